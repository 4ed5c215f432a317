"""Value objects produced by the dump readers.

A parser turns each decoded line (or block, or row) into either a :class:`LeakRecord` or a
:class:`Rejected`, never both and never nothing: every input line is accounted for.

A :class:`LeakRecord` holds plaintext leaked values *in memory only*; nothing downstream may
log, print or store ``login`` or ``password``. Their ``repr`` is redacted for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class LeakType(StrEnum):
    COMBO = "combo"
    ULP = "ulp"
    STEALER_LOG = "stealer_log"
    SESSION_COOKIE = "session_cookie"
    BREACH_RECORD = "breach_record"
    FEED_ALERT = "feed_alert"


@dataclass(frozen=True, slots=True)
class LeakRecord:
    """One leaked credential (or identifier) as found in a dump.

    ``login``: the raw leaked login field (e-mail, login ID, phone, account number), untouched
    except for surrounding whitespace. ``password``: the raw leaked password, exactly as leaked
    (only the line terminator removed), or ``None`` when the record carries none (identifier
    lists, session cookies, feed alerts, placeholder passwords such as ``NOT_SAVED``).
    ``site``: lower-case host name (IDN as punycode, no port, IPv6 without brackets) of the
    site the credential was captured for, or ``None``. ``has_pin``: the record also carried a
    second secret (trading PIN / 取引暗証番号) that needs a reset too. ``ambiguous``: the
    line could be read more than one way (low confidence). ``line_no``: 1-based line (or row,
    or block start line) in the decoded member.
    """

    login: str = field(repr=False)
    password: str | None = field(repr=False)
    leak_type: LeakType
    line_no: int
    site: str | None = None
    has_pin: bool = False
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line (or row/block) that did not yield a record, with a short reason code.

    Reason codes are stable snake_case strings (``comment``, ``blank``, ``no_delimiter``,
    ``html``, ``too_long``, ``binary``, ``bad_json``, ``no_login``, ...). The line's content is
    never kept: it may hold a plaintext credential.
    """

    line_no: int
    reason: str


@dataclass(frozen=True, slots=True)
class CookieHit:
    """A stolen browser cookie (Netscape cookie line) for ``site``.

    ``site``: the cookie's domain, lower-case, leading ``.`` removed, IDN as punycode.
    The cookie's name and value are deliberately not kept: the value is a live session
    secret. Deciding whether ``site`` is a broker's, and attributing the cookie to a
    customer, happens downstream.
    """

    line_no: int
    site: str
