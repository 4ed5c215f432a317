"""Stealer cookie files in Netscape format: one cookie per line, seven TAB-separated fields::

    domain  include_subdomains  path  secure  expiry  name  value

Each well-formed line gives a :class:`CookieHit` for the cookie's domain; the name and value
are dropped on the spot (the value is a live session secret). ``#HttpOnly_`` before the domain
is curl's marker for HTTP-only cookies, not a comment. Reasons: ``blank``, ``comment``,
``bad_cookie`` (wrong field count or flags), ``bad_domain``, plus the screening reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from exposure.dumps.formats.lines import screened
from exposure.dumps.formats.sites import normalise_host
from exposure.dumps.records import CookieHit, Rejected

_HTTP_ONLY = "#HttpOnly_"
_FLAGS = frozenset(("TRUE", "FALSE"))
_EXPIRY = re.compile(r"-?\d{1,20}(?:\.\d*)?")


def is_cookie_line(line: str) -> bool:
    """True for a well-formed Netscape cookie line."""
    return _fields(line) is not None


def _fields(line: str) -> str | None:
    """The domain of a well-formed cookie line, else ``None``."""
    if line.startswith(_HTTP_ONLY):
        line = line[len(_HTTP_ONLY) :]
    parts = line.split("\t", 6)
    if len(parts) != 7:
        return None
    domain, subdomains, path, secure, expiry = parts[:5]
    if (
        subdomains.upper() not in _FLAGS
        or secure.upper() not in _FLAGS
        or not path.startswith("/")
        or _EXPIRY.fullmatch(expiry.strip()) is None
    ):
        return None
    return domain


def parse_cookie_line(line_no: int, line: str) -> CookieHit | Rejected:
    """Parse one screened cookie-file line."""
    stripped = line.strip()
    if not stripped:
        return Rejected(line_no, "blank")
    if stripped.startswith("#") and not stripped.startswith(_HTTP_ONLY):
        return Rejected(line_no, "comment")
    domain = _fields(line.lstrip(" "))
    if domain is None:
        return Rejected(line_no, "bad_cookie")
    site = normalise_host(domain.strip().lstrip("."))
    return Rejected(line_no, "bad_domain") if site is None else CookieHit(line_no, site)


def iter_cookies(lines: Iterable[tuple[int, str]]) -> Iterator[CookieHit | Rejected]:
    """One item per line of a cookie file."""
    for item in screened(lines):
        yield item if isinstance(item, Rejected) else parse_cookie_line(*item)
