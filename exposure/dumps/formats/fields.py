"""Combo lines of more than two fields, as compilations write them.

Not every line of a combo list is ``login:password``. Seen in the wild (``docs/formats.md``,
"Messy lines from compilations"), and read here:

* **The e-mail is not the first field**: ``taro_y:2019-04-01:hanako@example.jp:pw``,
  ``taro_y:::2019-04-01:hanako@example.jp:pw``, ``2019-04-01;42;hanako@example.jp:pw``. The
  fields before the e-mail are identifiers (``taro_y``) or metadata (empty fields, dates,
  IP addresses, plain numbers such as row ids); the password is everything after the
  separator that follows the e-mail (it may contain separators itself). One record per
  identifier, each with that password. Only the first field may be an identifier: when a
  field between the first one and the e-mail is neither empty nor metadata, the line is not
  this shape (``ABCD1234:x;hanako@example.jp:pw`` could be a password ``x;...``).
* **A table row without a header** (the first separator is a TAB and another follows):
  ``42<TAB>taro_y<TAB>hanako@example.jp<TAB>203.0.113.9<TAB>5f4d...``. TAB splits every field
  (a password with a TAB in it is not worth a wrong reading of every row). Identifiers are
  the fields up to the last e-mail that are neither metadata nor hold a space; the password is
  the one field after it that is neither empty, a date nor an IP address. With none, or more
  than one, such field, the records carry no password rather than a guessed one.

Every record read this way is ``ambiguous``: the structure is inferred. A line none of these
shapes fits gives ``None`` and the caller reads it as ``login:password``.
"""

from __future__ import annotations

import ipaddress
import re

from exposure.dumps.formats.placeholders import is_placeholder_login
from exposure.dumps.records import LeakRecord, LeakType

SEPARATOR = re.compile(r"[ \t]*[:;|\t：][ \t]*")
"""A field delimiter with the spaces or tabs around it: those belong to no field."""

MAX_LOGIN_CHARS = 320
"""Longer "logins" are blobs (base64, tokens), not identifiers. Mirrored by
``MAX_LOGIN_CHARS`` in ``_fastscan.c``."""

_DOT = "[.。．｡]"
_C = r"[^@\s:;|,<>()\[\]\\\"：]"
_C_NO_DOT = r"[^@\s:;|,<>()\[\]\\\".。．｡：]"
_EMAIL = re.compile(rf"{_C}+@{_C_NO_DOT}{_C}*{_DOT}{_C}*{_C_NO_DOT}{_DOT}?")
# A date, possibly with the hour of a time whose ':' split the rest off.
_DATE = re.compile(
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})"
    r"(?:[ T]\d{1,2}(?::\d{2}){0,2}(?:\.\d+)?Z?)?"
)
COMBO = LeakType.COMBO


def looks_like_email(value: str) -> bool:
    """True when ``value`` is shaped like an e-mail address (carrier quirks such as ``..``
    in the local part are accepted; the domain needs a dot, ``。`` counts as one)."""
    return _EMAIL.fullmatch(value) is not None


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_metadata(value: str) -> bool:
    """A field that is no identifier: empty, a date, an IP address or a plain number."""
    return not value or value.isdigit() or _DATE.fullmatch(value) is not None or _is_ip(value)


def _is_identifier(value: str) -> bool:
    return (
        len(value) <= MAX_LOGIN_CHARS
        and not any(c.isspace() for c in value)
        and not is_placeholder_login(value)
    )


def _records(line_no: int, logins: list[str], password: str | None) -> tuple[LeakRecord, ...]:
    unique = list(dict.fromkeys(logins))
    return tuple(LeakRecord(login, password, COMBO, line_no, ambiguous=True) for login in unique)


def read_fields(line_no: int, line: str) -> tuple[LeakRecord, ...] | None:
    """Records of a line whose e-mail is not its first field (see the module docstring), or
    ``None`` when the line is not of that shape. The caller knows the first field holds no
    ``@`` and a later one does, and reads TAB-separated rows with :func:`table_row`."""
    before: list[str] = []
    pos = 0
    for m in SEPARATOR.finditer(line):
        field = line[pos : m.start()]
        if before and looks_like_email(field):
            return _email_inside(line_no, before, field, line[m.end() :] or None)
        before.append(field)
        pos = m.end()
    last = line[pos:].strip()
    if len(before) >= 2 and looks_like_email(last):
        return _email_inside(line_no, before, last, None)
    return None  # two fields (``pw:email``): the reversed-line rule decides


def _email_inside(
    line_no: int, before: list[str], email: str, password: str | None
) -> tuple[LeakRecord, ...] | None:
    head, middle = before[0].strip(), before[1:]
    if " " in head or not all(_is_metadata(field) for field in middle):
        return None
    if _is_metadata(head) or not _is_identifier(head):
        return _records(line_no, [email], password)
    return _records(line_no, [head, email], password)


def table_row(line_no: int, line: str) -> tuple[LeakRecord, ...] | None:
    """Records of a TAB-separated row holding an e-mail (see the module docstring)."""
    fields = [field.strip(" ") for field in line.split("\t")]
    last = max((k for k, f in enumerate(fields) if looks_like_email(f)), default=-1)
    if last < 0:
        return None
    logins = [f for f in fields[:last] if not _is_metadata(f) and _is_identifier(f)]
    candidates = [f for f in fields[last + 1 :] if f and _DATE.fullmatch(f) is None]
    candidates = [f for f in candidates if not _is_ip(f)]
    password = candidates[0] if len(candidates) == 1 else None
    return _records(line_no, [*logins, fields[last]], password)
