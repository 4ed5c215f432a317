"""Grammar of one URL:login:password (ULP) line.

The URL is read first with a scheme-aware grammar, then the separator that follows it decides
the rest: the login is the next field and *all* the rest is the password, untouched.

* ``scheme://`` then the host: a reg-name up to ``: / ? #``, whitespace or ``|``, or an IPv6
  literal in brackets. For ``android://<cert hash>@<package>/`` the host is the package name
  (the ``@`` is not an e-mail and the hash may contain ``/``). A ``user@`` before the host of
  another scheme is skipped.
* Port: ``:digits`` followed by ``/ ? #``, whitespace, ``|`` or the end of the line is a port.
  ``:digits:`` is read as a port only when the digits are at most 65535 and two more fields
  follow (``https://h:8443:ABCD1234:pw``), and the record is then ``ambiguous`` (``8443``
  could be the login); otherwise the digits are the login (``https://h:12345678:pw``).
* Path, query and fragment run to the first ``:`` that does not start ``://`` (so
  ``?next=https://x/`` stays in the URL), or to whitespace or ``|``.
* Separator: ``:``, ``|`` or ``;``, with the spaces/tabs around it (they belong to no field:
  ``docs/decisions/separator-whitespace.md``), or a run of spaces/tabs (``URL login
  password`` dumps). The login ends at the next occurrence of the same separator; the
  password is everything after it (less that separator's whitespace).
* ``;`` separators (``https://site/login;ABCD1234;pw``): a path may hold ``;`` too
  (``;jsessionid=...``), so when the path runs to the end of the line it ends instead at the
  first ``;`` that is followed by a login (no ``=`` or ``/`` in it) and another ``;``; such a
  record is ``ambiguous``.
* A placeholder login (``UNKNOWN``, ``N/A``, ``-``) rejects the line ``placeholder_login``.
* Without a scheme the first field must look like a domain or IP (``trade.sec.example:ID:pw``)
  and at least login *and* password must follow; such records are ``ambiguous`` (the line
  could be a combo line whose login contains a dot).
* A login that contains ``/`` hints at a path that itself held a ``:``: ``ambiguous``.
"""

from __future__ import annotations

import re

from exposure.dumps.formats.lines import mentions_channel
from exposure.dumps.formats.placeholders import is_placeholder_login
from exposure.dumps.formats.sites import looks_like_host, normalise_host
from exposure.dumps.records import LeakRecord, LeakType, Rejected

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{0,30})://")
_BROWSER_SCHEME = re.compile(
    r"(?:https?|android|ftps?|wss?|chrome-extension|moz-extension)://", re.IGNORECASE
)
_HOST = re.compile(r"[^\s:;/?#|\[\]@\\]*")
_PORT = re.compile(r"\d{1,5}")
_PATH = re.compile(r"[/?#](?:[^:\s|]|:(?=//))*")
# The common shape, in one match: http(s)://host[/path]:login:password with a plain host, no
# port, no ``://`` in the path and a login without ``/``, blanks or a leading ``digits:``. Any
# line it matches gets the same reading from the general grammar below, only faster.
# Mirrored by ulp_line in _fastscan.c (which also leaves placeholder logins to this module).
_FAST = re.compile(
    r"(?i:https?)://([^\s:;/?#|\[\]@\\]+)(?:[/?#][^:\s|]*)?:(?!\d{1,5}:)([^:/\s|]+):[ \t]*(.*)",
    re.DOTALL,
)
_SEPARATOR = re.compile(r"[ \t]*[:|;][ \t]*|[ \t]+")
_WHITESPACE = re.compile(r"[ \t]+")
_AFTER_PORT = frozenset(("/", "?", "#", "", " ", "\t", "|"))

ULP = LeakType.ULP


def starts_with_browser_url(line: str) -> bool:
    """True when the line starts with a URL scheme a browser stores credentials for."""
    return _BROWSER_SCHEME.match(line) is not None


def parse_ulp_line(line_no: int, line: str) -> LeakRecord | Rejected | None:
    """Parse one screened, non-noise ULP line; ``None`` when it does not start with a URL or
    a host (the caller may then read it as a combo line)."""
    fast = _FAST.match(line)
    if fast is not None:
        host, login, password = fast.groups()
        if is_placeholder_login(login):
            return Rejected(line_no, "placeholder_login")
        return LeakRecord(login, password or None, ULP, line_no, site=normalise_host(host))
    ambiguous = False
    m = _SCHEME.match(line)
    if m is not None:
        pos = m.end()
        if m.group(1).lower() == "android":
            at, colon = line.find("@", pos), line.find(":", pos)
            if at != -1 and (colon == -1 or at < colon):
                pos = at + 1
    else:
        pos = 0
    if line.startswith("[", pos):
        end = line.find("]", pos)
        if end == -1:
            return Rejected(line_no, "bad_url") if m else None
        host, pos = line[pos : end + 1], end + 1
    else:
        end = _end_of(_HOST, line, pos)
        if m is not None and line.startswith("@", end):  # user@host
            pos = end + 1
            end = _end_of(_HOST, line, pos)
        host, pos = line[pos:end], end
    if m is None:
        # ``taro.yamada@example.com:pw``: the "host" is an address's local part.
        if line.startswith("@", pos) or not (host.startswith("[") or looks_like_host(host)):
            return None
        ambiguous = True
    # Port, or a numeric login right after the host?
    if line.startswith(":", pos):
        pm = _PORT.match(line, pos + 1)
        if pm is not None:
            after = pm.end()
            nxt = line[after : after + 1]
            if nxt in _AFTER_PORT:
                pos = after
            elif nxt == ":" and int(pm.group()) <= 65535 and _has_two_fields(line[after:]):
                pos, ambiguous = after, True
    if line[pos : pos + 1] in ("/", "?", "#"):
        path = pos
        pos = _end_of(_PATH, line, pos)
        if pos == len(line) and (cut := _semicolon_cut(line, path)) is not None:
            pos, ambiguous = cut, True
    sm = _SEPARATOR.match(line, pos)
    if sm is None:
        if pos < len(line):
            return Rejected(line_no, "bad_url")
        return Rejected(line_no, "banner" if mentions_channel(line) else "no_login")
    return _credential(line_no, line[sm.end() :], sm.group(), host, m is not None, ambiguous)


def _credential(
    line_no: int, rest: str, separator: str, host: str, has_scheme: bool, ambiguous: bool
) -> LeakRecord | Rejected | None:
    login, password = _split_login(rest, separator)
    if password is None and not has_scheme:
        return None  # ``host:login`` is as likely a plain combo line
    login = login.strip()
    if not login:
        return Rejected(line_no, "no_login")
    if is_placeholder_login(login):
        return Rejected(line_no, "placeholder_login")
    return LeakRecord(
        login,
        password or None,
        ULP,
        line_no,
        site=normalise_host(host),
        ambiguous=ambiguous or "/" in login,
    )


def _split_login(rest: str, separator: str) -> tuple[str, str | None]:
    """Login and password after the URL: the login ends at the next occurrence of the
    separator that followed the URL (or of its unpadded form); ``None`` if there is none."""
    if not separator.strip():
        login, *tail = _WHITESPACE.split(rest, maxsplit=1)
        return login, tail[0] if tail else None
    for sep in (separator, separator.strip()):
        login, found, password = rest.partition(sep)
        if found:
            return login, password.lstrip(" \t")
    return rest, None


def _semicolon_cut(line: str, path: int) -> int | None:
    """Where a path that ran to the end of the line ends if ``;`` separates its login and
    password: the first ``;`` followed by a login without ``=`` or ``/`` and another ``;``."""
    cut = line.find(";", path)
    while cut != -1:
        after = line.find(";", cut + 1)
        if after == -1:
            return None
        login = line[cut + 1 : after]
        if login.strip() and "=" not in login and "/" not in login:
            return cut
        cut = after
    return None


def _end_of(pattern: re.Pattern[str], line: str, pos: int) -> int:
    m = pattern.match(line, pos)
    return pos if m is None else m.end()


def _has_two_fields(text: str) -> bool:
    """``text`` starts with ``:`` and holds ``login:password`` after it."""
    return text.find(":", 1) > 1
