"""Which format a decoded file is in, from its member name and its first lines.

Content decides first, in this order, because it is what the parser will face: Netscape cookie
lines; stealer ``Label: value`` blocks; SQL statements; JSON objects; a CSV header with an
identifier column; URL:login:password lines; combo lines. The member name then breaks ties
and covers heads that are all banners: a stealer ``Passwords.txt`` (``All Passwords.txt``,
``passwords[Chrome].txt``, ``_AllPasswords_list.txt``), a file in a ``Cookies/`` folder or
named ``cookies*.txt``. Files that never hold credentials (``UserInformation.txt``,
``Autofills/``, ``History/``, ...) and binary or unrecognisable heads give ``None``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Sequence

from exposure.dumps.formats.columns import ColumnMap
from exposure.dumps.formats.combo import parse_combo_line
from exposure.dumps.formats.cookies import is_cookie_line
from exposure.dumps.formats.lines import noise, screen
from exposure.dumps.formats.sql import is_sql_line
from exposure.dumps.formats.stealer import CREDENTIAL_ROLES, field_of, inline_fields
from exposure.dumps.formats.tables import MAX_PREAMBLE_ROWS, sniff_delimiter
from exposure.dumps.formats.ulp import parse_ulp_line
from exposure.dumps.records import LeakRecord, LeakType

_PASSWORD_FILE = re.compile(
    r"_?(?:all[\s_-]*)?passwords?(?:[\s_-]*list)?(?:\s*[\[(][^\])]*[\])]|[\s_-][\w\s-]*)?\.txt",
    re.IGNORECASE,
)
_COOKIE_FILE = re.compile(r"_?(?:all[\s_-]*)?cookies?.*\.txt", re.IGNORECASE)
_NOT_CREDENTIALS = re.compile(
    r"(?:user[\s_-]*information|information|system(?:[\s_-]*info)?|process[\s_-]*list|"
    r"important[\s_-]*autofills?|"
    r"installed[\s_-]*(?:software|programs?|browsers?)|autofills?.*|history.*|"
    r"credit[\s_-]*cards?.*|domain[\s_-]*detects?|screenshot.*)\.(?:txt|png|jpe?g)",
    re.IGNORECASE,
)
_NOT_CREDENTIAL_FOLDERS = frozenset(("autofills", "autofill", "history", "creditcards", "cc"))
_SQL_NAME = (".sql",)
_JSON_NAMES = (".jsonl", ".ndjson", ".json")


def _kind(line: str) -> str:
    """What one non-blank, screened head line looks like."""
    if is_cookie_line(line):
        return "cookie"
    if "|" in line and inline_fields(line) is not None:
        return "label:inline"  # a one-line stealer record: several roles at once
    field = field_of(line)
    if field is not None and field[0] in CREDENTIAL_ROLES:
        return "label:" + field[0]
    if is_sql_line(line):
        return "sql"
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            return "json" if isinstance(json.loads(stripped.rstrip(",")), dict) else "other"
        except (ValueError, RecursionError):
            return "other"
    if noise(line) is not None:
        return "noise"
    ulp = parse_ulp_line(0, line)
    if isinstance(ulp, LeakRecord):
        return "ulp" if ulp.leak_type is LeakType.ULP and not ulp.ambiguous else "host"
    return "combo" if isinstance(parse_combo_line(0, line), LeakRecord | tuple) else "other"


def _is_header(line: str) -> bool:
    cells = next(csv.reader([line], delimiter=sniff_delimiter(line)), [])
    return len(cells) >= 2 and ColumnMap.from_names(cells).usable


def detect_format(member_name: str, head: Sequence[str]) -> str | None:
    """One of :data:`~exposure.dumps.formats.FORMATS`, or ``None`` when the file is binary,
    empty, not a credential file or not recognisable (see the module docstring)."""
    inner = member_name.replace("\\", "/").rsplit("!", 1)[-1]
    parts = [p for p in inner.split("/") if p]
    base = parts[-1].lower() if parts else ""
    folders = {p.lower() for p in parts[:-1]}
    if _NOT_CREDENTIALS.fullmatch(base) or folders & _NOT_CREDENTIAL_FOLDERS:
        return None
    lines: list[str] = []
    binary = 0
    for raw in head:
        line, reason = screen(raw)
        if reason is not None:
            binary += 1
        elif line.strip():
            lines.append(line)
    if not lines or binary * 3 > len(head):
        return None
    kinds = Counter(_kind(line) for line in lines)
    data = sum(kinds.values()) - kinds["noise"]
    labels = sum(n for k, n in kinds.items() if k.startswith("label:"))
    label_roles = sum(1 for k in kinds if k.startswith("label:")) + kinds["label:inline"]
    cookie_name = "cookies" in folders or _COOKIE_FILE.fullmatch(base) is not None
    password_name = _PASSWORD_FILE.fullmatch(base) is not None

    if kinds["cookie"] and (cookie_name or kinds["cookie"] * 2 >= data):
        return "stealer_cookies"
    if label_roles >= 2 and (password_name or labels * 10 >= data * 3):
        return "stealer_passwords"
    if kinds["sql"]:
        return "sql"
    if kinds["json"] and kinds["json"] * 2 >= data:
        return "jsonl"
    candidates = [ln for ln in lines if noise(ln) is None][: MAX_PREAMBLE_ROWS + 1]
    if any(_is_header(ln) for ln in candidates):
        return "csv"
    if kinds["ulp"] + kinds["host"] and (kinds["ulp"] + kinds["host"]) * 2 >= data:
        return "ulp"
    credentials = kinds["combo"] + kinds["ulp"] + kinds["host"]
    if kinds["combo"] and credentials * 2 >= data:
        return "combo"
    if password_name:
        return "stealer_passwords"
    if base.endswith(_SQL_NAME):
        return "sql"
    if base.endswith(_JSON_NAMES) and kinds["json"]:
        return "jsonl"
    return None
