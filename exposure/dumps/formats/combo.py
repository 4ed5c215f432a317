"""Grammar of one combo-list line: ``login<d>password`` with ``d`` one of ``:`` ``;`` ``|`` TAB.

Rules (where docs/formats.md leaves a choice):

* **Split on the first delimiter of any kind.** Login IDs, phone numbers and e-mail addresses
  (outside RFC quoting, which leaks never use) contain none of ``: ; | TAB``, while passwords
  may contain all of them, so the first one is the boundary: ``jiro@example.com:p@ss:w0rd;x``
  gives the password ``p@ss:w0rd;x`` and ``jiro@example.com;pa:ss`` the password ``pa:ss``.
* **The password is kept byte for byte** after that delimiter (spaces included); only the
  login is trimmed. An empty password is ``None`` (the line carries no password).
* **Password first.** When the first field has no ``@`` and everything after the delimiter is
  an e-mail address (``Fuji-San_3776:hanako@example.jp``), the fields are swapped and the
  record is ``ambiguous``. When the first field has no ``@`` and only the *tail* after a later
  delimiter is an e-mail (``ABCD1234:x;hanako@example.jp``), the line is read login-first
  but marked ``ambiguous``: it could be a password that contains a delimiter.
* **Identifier alone**: a line without delimiter that is an e-mail address is a record
  without password; any other line without delimiter is rejected ``no_delimiter`` (a bare
  word is as likely to be a password or junk as a login ID).
* ``#`` followed by a non-space is not a comment when the line has a delimiter
  (``#Sakura2025:hanako@example.jp`` is a reversed line); such a line is ``ambiguous``.
"""

from __future__ import annotations

import re

from exposure.dumps.formats.lines import is_banner, mentions_channel
from exposure.dumps.records import LeakRecord, LeakType, Rejected

DELIMITER = re.compile(r"[:;|\t]")
_DOT = "[.。．｡]"
# Characters that cannot appear unquoted in an address (RFC 5322 specials, our delimiters).
_C = r"[^@\s:;|,<>()\[\]\\\"]"
_C_NO_DOT = r"[^@\s:;|,<>()\[\]\\\".。．｡]"
_EMAIL = re.compile(rf"{_C}+@{_C_NO_DOT}{_C}*{_DOT}{_C}*{_C_NO_DOT}{_DOT}?")
_TAIL_EMAIL = re.compile(rf"[:;|\t]\s*{_C}+@{_C}+{_DOT}{_C}+\s*\Z")

_SELLER_WORDS = frozenset(
    "seller sellers freelogs freelog privatelogs privatelog freshlogs freshlog dailylogs".split()
)

MAX_LOGIN_CHARS = 320
"""Longer "logins" are blobs (base64, tokens), not identifiers: rejected ``bad_login``."""

COMBO = LeakType.COMBO


def looks_like_email(value: str) -> bool:
    """True when ``value`` is shaped like an e-mail address (carrier quirks such as ``..``
    in the local part are accepted; the domain needs a dot, ``。`` counts as one)."""
    return _EMAIL.fullmatch(value) is not None


def parse_combo_line(line_no: int, line: str) -> LeakRecord | Rejected:
    """Parse one screened, non-noise combo line (see the module docstring for the rules)."""
    m = DELIMITER.search(line)
    if m is None:
        return _without_delimiter(line_no, line)
    i = m.start()
    login = line[:i].strip()
    if "@" in login and len(login) <= MAX_LOGIN_CHARS:  # fast path: e-mail first
        return LeakRecord(login, line[i + 1 :] or None, COMBO, line_no)
    return parse_split(line_no, line, i)


def parse_split(line_no: int, line: str, i: int) -> LeakRecord | Rejected:
    """The general case of :func:`parse_combo_line`, once the first delimiter is at ``i``."""
    login = line[:i].strip()
    password = line[i + 1 :]
    if not login:
        return Rejected(line_no, "no_login")
    if len(login) > MAX_LOGIN_CHARS:
        return Rejected(line_no, "bad_login")
    if _may_be_banner(login, password) and is_banner(line):
        return Rejected(line_no, "banner")
    ambiguous = login.startswith("#")
    if "@" not in login and "@" in password:
        candidate = password.strip()
        if looks_like_email(candidate):
            # Password first: ``Fuji-San_3776:hanako@example.jp``.
            return LeakRecord(candidate, line[:i] or None, COMBO, line_no, ambiguous=True)
        if _TAIL_EMAIL.search(password):
            ambiguous = True
    return LeakRecord(login, password or None, COMBO, line_no, ambiguous=ambiguous)


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
