"""Time in one place: the current instant, ISO 8601 in and out, and how long to wait.

Every moment the monitor handles is an aware UTC ``datetime`` (the database stores UTC; report
weeks convert to ``EXPOSURE_TIMEZONE`` where they are drawn). Outward, a moment is written as
ISO 8601 with a ``Z``; inward, a timestamp without an offset is refused unless the caller says
what it means (a feed's bare time is read as UTC; an API client's is ambiguous).

Waiting is time too: :func:`retry_after_seconds` reads an HTTP ``Retry-After`` header (the one
parser for webhook receivers and feeds alike), and :func:`full_jitter` draws a backoff delay.
"""

from __future__ import annotations

import functools
import math
import random
import secrets
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_RANDOM = secrets.SystemRandom()


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


@functools.lru_cache(maxsize=1024)  # a batch's events and rows all carry the same few moments
def iso_utc(moment: datetime, *, timespec: str = "seconds") -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z`` (``2025-05-12T01:02:03Z``).

    ``timespec`` is :meth:`datetime.isoformat`'s: ``"seconds"`` for webhook bodies and
    listings, ``"auto"`` to keep the microseconds a stored moment has (run records).
    """
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


class NaiveTimestamp(ValueError):
    """An ISO 8601 timestamp without a UTC offset where one is required."""


def parse_iso(text: str, *, naive_as_utc: bool = False) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime.

    A time without an offset raises :class:`NaiveTimestamp` (a ``ValueError``), or is read as
    UTC when ``naive_as_utc``. Raises ``ValueError`` when ``text`` is no ISO 8601 timestamp and
    ``OverflowError`` when it has no UTC equivalent (``0001-01-01T00:00+09:00``).
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        if not naive_as_utc:
            raise NaiveTimestamp("the timestamp has no UTC offset")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait from ``now``; ``None`` when the header is
    absent or unreadable. Callers bound the result to what they are prepared to wait.

    RFC 9110 allows delay-seconds (digits) or an HTTP date. A decimal (``1.5``) is read as
    seconds too: waiting is the safe reading of a sender that meant to slow us down. An HTTP
    date is always GMT, so one whose zone the parser cannot see (the obsolete asctime form)
    is read as UTC. A moment already past means now (``0``); a negative or non-finite number
    is unreadable.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max((moment - now).total_seconds(), 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def full_jitter(attempt: int, *, base: float, cap: float, rng: random.Random = _RANDOM) -> float:
    """A backoff delay for retry number ``attempt`` (1-based): uniform between 0 and a ceiling
    that doubles from ``base`` each attempt up to ``cap`` ("full jitter"), so many failing
    clients spread out instead of retrying in step."""
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 30))
    return rng.uniform(0.0, ceiling)
