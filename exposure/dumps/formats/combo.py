"""Grammar of one combo-list line: ``login<d>password`` with ``d`` one of ``:`` ``;`` ``|`` TAB
or the full-width colon ``：``.

Rules (where docs/formats.md leaves a choice):

* **Split on the first delimiter of any kind.** Login IDs, phone numbers and e-mail addresses
  (outside RFC quoting, which leaks never use) contain none of ``: ; | TAB``, while passwords
  may contain all of them, so the first one is the boundary: ``jiro@example.com:p@ss:w0rd;x``
  gives the password ``p@ss:w0rd;x`` and ``jiro@example.com;pa:ss`` the password ``pa:ss``.
* **Whitespace around a delimiter belongs to neither field** (one rule for every format, see
  ``docs/decisions/separator-whitespace.md``): ``hanako@example.jp | Sakura#2025`` gives
  ``Sakura#2025``. Everything else of the password is kept byte for byte, trailing spaces
  included. An empty password is ``None`` (the line carries no password).
* **Two identifiers**: when what follows the login is itself an e-mail address, alone or
  followed by a delimiter (``hanako@example.jp:taro@example.jp:pw``,
  ``hanako@example.jp;taro@example.jp:pw``), both are logins with the rest as their password
  (``None`` when nothing follows): two ``ambiguous`` records, never one with the second
  address as a password.
* **The e-mail not first** (``taro_y:2019-04-01:hanako@example.jp:pw``, table rows): see
  :mod:`~exposure.dumps.formats.fields`.
* **Password first.** When the first field has no ``@`` and everything after the delimiter is
  an e-mail address (``Fuji-San_3776:hanako@example.jp``), the fields are swapped and the
  record is ``ambiguous``. When the first field has no ``@`` and only the *tail* after a later
  delimiter is an e-mail (``ABCD1234:x;hanako@example.jp``), the line is read login-first
  but marked ``ambiguous``: it could be a password that contains a delimiter.
* **Placeholder logins** (``UNKNOWN``, ``N/A``, ``null``, ``-``): rejected
  ``placeholder_login``.
* **Identifier alone**: a line without delimiter that is an e-mail address is a record
  without password; any other line without delimiter is rejected ``no_delimiter`` (a bare
  word is as likely to be a password or junk as a login ID).
* ``#`` followed by a non-space is not a comment when the line has a delimiter
  (``#Sakura2025:hanako@example.jp`` is a reversed line); such a line is ``ambiguous``.
* A one-line stealer record (``URL: https://x | USER: u | PASS: p``) met in a list is read as
  the stealer parser reads it.

A parsed line gives a :class:`LeakRecord`, a :class:`Rejected`, or (two identifiers, the
e-mail not first) a tuple of records.
"""

from __future__ import annotations

import re

from exposure.dumps.formats.fields import (
    MAX_LOGIN_CHARS,
    SEPARATOR,
    looks_like_email,
    read_fields,
    table_row,
)
from exposure.dumps.formats.lines import is_banner, mentions_channel
from exposure.dumps.formats.placeholders import is_placeholder_login
from exposure.dumps.formats.stealer import inline_record
from exposure.dumps.records import LeakRecord, LeakType, Rejected

__all__ = [
    "COMBO",
    "DELIMITER",
    "MAX_LOGIN_CHARS",
    "LineItems",
    "looks_like_email",
    "parse_combo_line",
    "parse_split",
]

DELIMITER = re.compile(r"[:;|\t：]")  # find_delimiter in _fastscan.c: the ASCII ones but TAB
_C = r"[^@\s:;|,<>()\[\]\\\"：]"
_TAIL_EMAIL = re.compile(rf"[:;|\t：]\s*{_C}+@{_C}+[.。．｡]{_C}+\s*\Z")

_SELLER_WORDS = frozenset(
    "seller sellers freelogs freelog privatelogs privatelog freshlogs freshlog dailylogs".split()
)

COMBO = LeakType.COMBO

LineItems = LeakRecord | Rejected | tuple[LeakRecord, ...]
"""What one line gives: a record, a rejection, or several records (never an empty tuple)."""


def parse_combo_line(line_no: int, line: str) -> LineItems:
    """Parse one screened, non-noise combo line (see the module docstring for the rules)."""
    m = DELIMITER.search(line)
    if m is None:
        return _without_delimiter(line_no, line)
    i = m.start()
    login = line[:i].strip()
    # The plain case: an e-mail first, no '@' after it (which could start a second
    # identifier), not a TAB-separated row. combo_line in _fastscan.c mirrors it (and also
    # takes the lines whose '@' cannot start an address, which _second_identifier leaves be).
    if "@" in login and len(login) <= MAX_LOGIN_CHARS and "@" not in line[i + 1 :]:
        if line[i] != "\t":
            return LeakRecord(login, line[i + 1 :].lstrip(" \t") or None, COMBO, line_no)
    return parse_split(line_no, line, i)


def parse_split(line_no: int, line: str, i: int) -> LineItems:
    """The general case of :func:`parse_combo_line`, once the first delimiter is at ``i``."""
    login = line[:i].strip()
    password = line[i + 1 :].lstrip(" \t")  # the delimiter's whitespace is no field's
    if not login:
        return Rejected(line_no, "no_login")
    if len(login) > MAX_LOGIN_CHARS:
        return Rejected(line_no, "bad_login")
    if line[i] == "\t" and "\t" in password:
        row = table_row(line_no, line)
        if row is not None:
            return row
    if "@" in login:
        return _second_identifier(line_no, login, password) or LeakRecord(
            login, password or None, COMBO, line_no
        )
    if _may_be_banner(login, password) and is_banner(line):
        return Rejected(line_no, "banner")
    if " " in login or login.lower() in _INLINE_LABELS:
        record = inline_record(line_no, line)
        if record is not None:
            return record
    if is_placeholder_login(login):
        return Rejected(line_no, "placeholder_login")
    ambiguous = login.startswith("#")
    if "@" in password:
        fields = read_fields(line_no, line)
        if fields is not None:
            return fields
        candidate = password.strip()
        if looks_like_email(candidate):
            # Password first: ``Fuji-San_3776:hanako@example.jp``.
            password_first = line[:i].rstrip(" \t") or None
            return LeakRecord(candidate, password_first, COMBO, line_no, ambiguous=True)
        if _TAIL_EMAIL.search(password):
            ambiguous = True
    return LeakRecord(login, password or None, COMBO, line_no, ambiguous=ambiguous)


# Labels a one-line stealer record starts with (``URL: x | USER: u | PASS: p``).
_INLINE_LABELS = frozenset("url host hostname site origin location soft browser user".split())


def _second_identifier(line_no: int, login: str, password: str) -> tuple[LeakRecord, ...] | None:
    """Two records when the password field starts with an e-mail address (see the module
    docstring), else ``None``."""
    m = SEPARATOR.search(password)
    head = password[: m.start()] if m else password.rstrip()
    if not looks_like_email(head):
        return None
    rest = password[m.end() :] if m else ""
    return tuple(
        LeakRecord(name, rest or None, COMBO, line_no, ambiguous=True)
        for name in dict.fromkeys((login, head))
    )


def _may_be_banner(login: str, password: str) -> bool:
    """Cheap necessary condition for :func:`is_banner` (which costs a regex) on a split line:
    a multi-word or seller label, or a value holding a handle or a link."""
    return " " in login or login.lower() in _SELLER_WORDS or "@" in password or "/" in password


def _without_delimiter(line_no: int, line: str) -> LeakRecord | Rejected:
    value = line.strip()
    if looks_like_email(value):
        return LeakRecord(value, None, COMBO, line_no)
    if value.startswith("#"):
        return Rejected(line_no, "comment")
    if mentions_channel(value) or is_banner(value):
        return Rejected(line_no, "banner")
    return Rejected(line_no, "no_delimiter")
