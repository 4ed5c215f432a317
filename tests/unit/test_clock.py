"""Time in one place: ISO 8601 in and out, Retry-After, backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from exposure.clock import (
    NaiveTimestamp,
    full_jitter,
    iso_utc,
    parse_iso,
    retry_after_seconds,
    utcnow,
)

NOW = datetime(2026, 5, 12, 1, 2, 3, tzinfo=UTC)
TOKYO = timezone(timedelta(hours=9))


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5


@pytest.mark.parametrize(
    ("moment", "timespec", "text"),
    [
        (NOW, "seconds", "2026-05-12T01:02:03Z"),
        (NOW.replace(microsecond=250000), "seconds", "2026-05-12T01:02:03Z"),
        (NOW.replace(microsecond=250000), "auto", "2026-05-12T01:02:03.250000Z"),
        (NOW, "auto", "2026-05-12T01:02:03Z"),
        (datetime(2026, 5, 12, 10, 2, 3, tzinfo=TOKYO), "seconds", "2026-05-12T01:02:03Z"),
    ],
)
def test_iso_utc(moment: datetime, timespec: str, text: str) -> None:
    assert iso_utc(moment, timespec=timespec) == text


@pytest.mark.parametrize(
    ("text", "naive_as_utc", "expected"),
    [
        ("2026-05-12T01:02:03Z", False, NOW),
        ("2026-05-12T10:02:03+09:00", False, NOW),
        ("2026-05-12T01:02:03", True, NOW),
        ("2026-05-12T01:02:03.5+00:00", False, NOW.replace(microsecond=500000)),
    ],
)
def test_parse_iso(text: str, naive_as_utc: bool, expected: datetime) -> None:
    parsed = parse_iso(text, naive_as_utc=naive_as_utc)
    assert parsed == expected and parsed.tzinfo is UTC


def test_parse_iso_refuses_what_it_cannot_place() -> None:
    with pytest.raises(NaiveTimestamp):
        parse_iso("2026-05-12T01:02:03")
    with pytest.raises(ValueError, match=r"(?i)invalid"):
        parse_iso("yesterday")
    with pytest.raises(OverflowError):
        parse_iso("0001-01-01T00:00:00+09:00")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),  # a decimal is read as seconds: waiting is the safe reading
        ("999999999", 999999999.0),  # not capped here: each caller bounds its own wait
        ("Tue, 12 May 2026 03:02:03 GMT", 7200.0),
        ("Tue, 12 May 2026 03:02:03 +0000", 7200.0),
        ("Tue, 12 May 2026 12:02:03 +0900", 7200.0),
        # asctime has no zone; HTTP dates are always GMT, so it is not dropped as naive
        ("Tue May 12 03:02:03 2026", 7200.0),
        ("Tuesday, 12-May-26 03:02:03 GMT", 7200.0),  # RFC 850
        ("Tue, 12 May 2026 00:00:00 GMT", 0.0),  # in the past: now
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, NOW) == seconds


class _Extreme(random.Random):
    def __init__(self, *, top: bool) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (1000, 10.0)]
)
def test_full_jitter_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert full_jitter(attempt, base=2.0, cap=10.0, rng=_Extreme(top=True)) == ceiling
    assert full_jitter(attempt, base=2.0, cap=10.0, rng=_Extreme(top=False)) == 0.0
    draws = [full_jitter(attempt, base=2.0, cap=10.0) for _ in range(200)]
    assert all(0.0 <= d <= ceiling for d in draws)
    assert len(set(draws)) > 150  # jittered, not a fixed schedule
