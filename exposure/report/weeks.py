"""ISO weeks in the report's time zone.

A report week runs from Monday 00:00 to the next Monday 00:00 *local time* in the configured zone
(``EXPOSURE_TIMEZONE``, Asia/Tokyo by default), start inclusive and end exclusive. The database
holds UTC, so :meth:`IsoWeek.bounds` converts both ends to aware UTC datetimes for the queries:
in Tokyo the week 2025-W20 is ``[2025-05-11T15:00Z, 2025-05-18T15:00Z)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from exposure.errors import FatalError

_WEEK_RE = re.compile(r"^(\d{4})-?W(\d{2})$")


class InvalidWeek(FatalError):
    """A week was not written as ``YYYY-Www`` or does not exist (e.g. W53 of a 52-week year)."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"invalid ISO week {text!r}: expected YYYY-Www, e.g. 2025-W20")


class WeekNotStarted(FatalError):
    """A report was asked for a week that has not begun: it would have nothing to count."""

    def __init__(self, week: IsoWeek, current: IsoWeek) -> None:
        self.week = week
        self.current = current
        super().__init__(
            f"week {week} has not started yet; the latest week with data is the week in "
            f"progress, {current} (exposure report --week {current})"
        )


@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    """One ISO 8601 week (``2025-W20``); ordered, hashable, printable as ``YYYY-Www``."""

    year: int
    week: int

    def __post_init__(self) -> None:
        try:
            date.fromisocalendar(self.year, self.week, 1)
        except ValueError:
            raise InvalidWeek(f"{self.year:04d}-W{self.week:02d}") from None

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """Read ``2025-W20`` (or ``2025W20``); raise :class:`InvalidWeek` otherwise."""
        match = _WEEK_RE.match(text.strip().upper())
        if match is None:
            raise InvalidWeek(text)
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        """The ISO week a calendar date belongs to."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def containing(cls, moment: datetime, tz: tzinfo) -> IsoWeek:
        """The week (in ``tz``) that an aware moment falls in."""
        if moment.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime")
        return cls.of(moment.astimezone(tz).date())

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 7)

    def shift(self, weeks: int) -> IsoWeek:
        """The week ``weeks`` later (negative: earlier)."""
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """``[start, end)`` in aware UTC: local Monday 00:00 to the next local Monday 00:00.

        Built from local wall-clock midnights, so a zone with daylight saving gets a week of
        167 or 169 hours rather than a boundary an hour off.
        """
        start = datetime.combine(self.monday, time(0), tzinfo=tz)
        end = datetime.combine(self.monday + timedelta(weeks=1), time(0), tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)


def last_complete_week(now: datetime, tz: tzinfo) -> IsoWeek:
    """The latest week (in ``tz``) that has ended by ``now``: on Monday 08:00 JST, last week."""
    return IsoWeek.containing(now, tz).shift(-1)
