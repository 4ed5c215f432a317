"""Stealer-log password files (``Passwords.txt``, ``All Passwords.txt``, ``passwords[Chrome].txt``).

A file is a sequence of *blocks* of ``Label: value`` lines, one block per saved credential::

    URL: https://trade.sec.example/login       soft: Google Chrome        HOSTNAME: https://...
    Username: ABCD1234                         host: https://...          USER LOGIN: ABCD1234
    Password: Sakura#2025                      login: ABCD1234            USER PASSWORD: ...
    Application: Google_[Chrome]_Default       password: Sakura#2025

Labels are matched case-insensitively after folding full-width forms, spaces, ``_``/``-`` and
leetspeak (``UR1``, ``U53RN4M3``, ``P455W0RD``). Roles: the site (URL, HOST, HOSTNAME, ...),
the login (Username, USER, LOGIN, USER LOGIN, ...), the password (Password, PASS, USER
PASSWORD, ...) and the application (SOFT, Browser, Application, Storage, ...).

Block boundaries: a blank line, a rule (``=====``, ``━━━━━``) or comment, or a label whose role
the current block already has (dialects that write blocks back to back).

Accounting: a block that holds a site, login or password field is one unit and yields exactly
one item at the line where it starts (a record, or ``no_login``); its other lines, including
unknown labels such as ``Created:``, are covered by it. A block of only unknown labels (the
``IP:``/``Country:`` kind) or only an application yields ``no_credential`` for each of its
lines. Blank and rule lines between blocks are ``blank`` / ``separator``; seller banners
(``Seller:``, ``Free Logs:``, Telegram links) ``banner``; lines that are not ``Label: value``
``unknown_line``.

One-line records (Raccoon and older dialects): ``URL: https://x | USER: u | PASS: p``, fields
split at a ``|`` that is followed by a label. Such a line is a block of its own.

Values: the whitespace around the label's colon (and around a one-line record's ``|``) is part
of the separator, as in every format (``docs/decisions/separator-whitespace.md``); the site and
login are trimmed; the password keeps everything else, trailing spaces included. Placeholder
passwords (``NOT_SAVED``, ``(null)``, empty) give ``password=None``; a placeholder login
(``UNKNOWN``, ``N/A``, ``-``) rejects the block ``placeholder_login``, an empty one ``no_login``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

from exposure.dumps.formats.lines import is_banner, noise, screened
from exposure.dumps.formats.placeholders import PLACEHOLDER_PASSWORDS, is_placeholder_login
from exposure.dumps.formats.sites import site_from_url
from exposure.dumps.records import LeakRecord, LeakType, Rejected

SITE, LOGIN, PASSWORD, APP = "site", "login", "password", "app"
CREDENTIAL_ROLES = frozenset((SITE, LOGIN, PASSWORD))

_LABEL = re.compile(r"\s*([^\W_][\w $@\-]{0,29}?)\s*[:：]")
_LEET_L = str.maketrans("013457@$", "oleastas")
_LEET_I = str.maketrans("013457@$", "oieastas")  # ``LOG1N``: 1 also stands for i
_FOLD = str.maketrans("", "", " _-.")

_ROLES: dict[str, str] = {
    **dict.fromkeys(
        "url uri host hostname site website origin location link domain サイト ホスト".split(), SITE
    ),
    **dict.fromkeys(
        """username user login userlogin loginname loginid userid email mail emailaddress account
        ユーザー名 ユーザー ユーザーid ログイン ログインid メール メールアドレス""".split(),
        LOGIN,
    ),
    **dict.fromkeys("password pass passwd pwd pw userpassword パスワード".split(), PASSWORD),
    **dict.fromkeys("soft software browser application app storage ブラウザ ソフト".split(), APP),
}

# A "|" (with the whitespace around it) that may start the next field of a one-line record.
_INLINE_BAR = re.compile(r"[ \t]*\|[ \t]*")

STEALER = LeakType.STEALER_LOG


@lru_cache(maxsize=1024)
def label_role(label: str) -> str | None:
    """Role of a field label (``URL``, ``U53RN4M3``, ``USER PASSWORD``), or ``None``."""
    folded = unicodedata.normalize("NFKC", label).lower().translate(_FOLD)
    role = _ROLES.get(folded.translate(_LEET_L))
    return role if role is not None else _ROLES.get(folded.translate(_LEET_I))


def field_of(line: str) -> tuple[str, str] | None:
    """``(role, raw value)`` for a known ``Label: value`` line, else ``None``."""
    m = _LABEL.match(line)
    if m is None:
        return None
    role = label_role(m.group(1))
    return None if role is None else (role, line[m.end() :])


class _Block:
    """The block being read: its start line, its known fields and every line it holds."""

    __slots__ = ("deferred", "fields", "lines", "start")

    def __init__(self) -> None:
        self.start = 0
        self.fields: dict[str, str] = {}
        self.lines: list[tuple[int, str]] = []  # (line_no, reason if the block has no credential)
        # Rejections of stray lines met inside the block, given after the block's own item so
        # that items come out in line order.
        self.deferred: list[Rejected] = []

    def reject(self, line_no: int, reason: str) -> Iterator[Rejected]:
        """Reject a line that is not part of the block, in line order."""
        if self.lines:
            self.deferred.append(Rejected(line_no, reason))
        else:
            yield Rejected(line_no, reason)

    def hold(self, line_no: int, reason: str) -> None:
        if not self.lines:
            self.start = line_no
        self.lines.append((line_no, reason))

    def close(self) -> Iterator[LeakRecord | Rejected]:
        items: list[LeakRecord | Rejected]
        if self.fields.keys() & CREDENTIAL_ROLES:
            items = [self._record(), *self.deferred]
        else:
            rejected = [Rejected(n, reason) for n, reason in self.lines] + self.deferred
            items = sorted(rejected, key=lambda item: item.line_no)
        self.fields, self.lines, self.deferred = {}, [], []
        yield from items

    def _record(self) -> LeakRecord | Rejected:
        return _record(self.fields, self.start)


def _record(fields: dict[str, str], line_no: int) -> LeakRecord | Rejected:
    """The record of a block's fields (raw values after the label's colon)."""
    login = fields.get(LOGIN, "").strip()
    if not login:
        return Rejected(line_no, "no_login")
    if is_placeholder_login(login):
        return Rejected(line_no, "placeholder_login")
    password: str | None = fields.get(PASSWORD, "").lstrip(" \t")
    if not password or password.strip().lower() in PLACEHOLDER_PASSWORDS:
        password = None
    url = fields.get(SITE, "").strip()
    site = site_from_url(url) if url else None
    return LeakRecord(login, password, STEALER, line_no, site=site)


def inline_fields(line: str) -> dict[str, str] | None:
    """The fields of a one-line record (``URL: https://x | USER: u | PASS: p``): at least two
    of site, login and password; else ``None``. A ``|`` separates fields only where a known
    label follows it, so a password may hold ``|`` (``PASS: a | b:c``)."""
    if "|" not in line:
        return None
    parts: list[str] = []
    start = 0
    for bar in _INLINE_BAR.finditer(line):
        if field_of(line[bar.end() :]) is not None:
            parts.append(line[start : bar.start()])
            start = bar.end()
    parts.append(line[start:])
    fields: dict[str, str] = {}
    for part in parts:
        field = field_of(part)
        if field is None or field[0] in fields:
            return None
        fields[field[0]] = field[1]
    return fields if len(fields.keys() & CREDENTIAL_ROLES) >= 2 else None


def inline_record(line_no: int, line: str) -> LeakRecord | Rejected | None:
    """The item of a one-line record, or ``None`` when ``line`` is not one."""
    fields = inline_fields(line)
    return None if fields is None else _record(fields, line_no)


def iter_stealer_passwords(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """Items of a stealer password file (see the module docstring for the accounting)."""
    block = _Block()
    for item in screened(lines):
        if isinstance(item, Rejected):
            yield from block.reject(item.line_no, item.reason)
            continue
        line_no, line = item
        if not line.strip():
            yield from block.close()
            yield Rejected(line_no, "blank")
            continue
        if "|" in line and (one_line := inline_record(line_no, line)) is not None:
            yield from block.close()
            yield one_line
            continue
        field = field_of(line)
        if field is not None:
            role, value = field
            if role in block.fields:
                yield from block.close()
            block.hold(line_no, "no_credential")
            block.fields[role] = value
            continue
        reason = noise(line)
        if reason in ("separator", "comment"):
            yield from block.close()
        if reason is not None:
            yield from block.reject(line_no, reason)
        elif _LABEL.match(line):
            block.hold(line_no, "banner" if is_banner(line) else "no_credential")
        else:
            yield from block.reject(line_no, "unknown_line")
    yield from block.close()
