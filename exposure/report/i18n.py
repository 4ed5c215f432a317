"""Report languages: the strings (``locales/<lang>.json``) and number and date conventions.

Formats are written out here rather than taken from the C library's locale, so a report looks
the same on every host: ja ``2025年5月12日`` and ``1,234件``; en ``12 May 2025`` and ``1,234``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Self

from exposure.errors import ConfigurationError
from exposure.report.weeks import IsoWeek

LANGUAGES = ("ja", "en")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_JA_WEEKDAYS = ("月", "火", "水", "木", "金", "土", "日")
_EN_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NOTHING = "—"


@cache
def report_strings(lang: str) -> dict[str, str]:
    """Every string of the report in ``lang`` (``locales/<lang>.json``)."""
    text = resources.files("exposure.report").joinpath("locales", f"{lang}.json").read_text("utf-8")
    strings: dict[str, str] = json.loads(text)
    return strings


@dataclass(frozen=True, slots=True)
class Locale:
    """One report language: :meth:`t` for strings, the other methods for numbers and dates."""

    lang: str

    @classmethod
    def get(cls, lang: str) -> Self:
        """The locale for ``ja`` or ``en``; anything else is a configuration error."""
        if lang not in LANGUAGES:
            raise ConfigurationError("--lang", f"must be one of {', '.join(LANGUAGES)}")
        return cls(lang)

    @property
    def strings(self) -> dict[str, str]:
        return report_strings(self.lang)

    def t(self, key: str, **values: Any) -> str:
        """The string for ``key`` with ``{placeholders}`` filled; a missing key is a bug."""
        text = self.strings[key]
        return text.format(**values) if values else text

    def label(self, group: str, key: str) -> str:
        """The name of an enum value (``action.notify``); the raw value when it is unknown,
        so a leak type added after this release still renders."""
        return self.strings.get(f"{group}.{key}", key)

    def number(self, value: float | None, digits: int = 0) -> str:
        """Thousands separators in both languages: ``1,234`` / ``12.5``."""
        if value is None:
            return NOTHING
        return f"{value:,.{digits}f}"

    def count(self, value: int | None) -> str:
        """A count of items: ja ``1,234件``, en ``1,234``."""
        if value is None:
            return NOTHING
        return self.t("unit.count", value=self.number(value))

    def hours(self, value: float | None) -> str:
        """A duration in hours with one decimal, ja ``12.5時間``, en ``12.5 h``; under an hour
        in whole minutes, ja ``6分``, en ``6 min`` (``0.1 h`` would hide a 3-minute reset)."""
        if value is None:
            return NOTHING
        if abs(value) < 1:
            return self.t("unit.minutes", value=self.number(round(abs(value) * 60)))
        return self.t("unit.hours", value=self.number(value, 1))

    def share(self, part: int, whole: int) -> str:
        if not whole:
            return NOTHING
        return self.t("unit.share", value=self.number(100 * part / whole, 1))

    def date(self, day: dt.date) -> str:
        """ja ``2025年5月12日``, en ``12 May 2025``."""
        if self.lang == "ja":
            return f"{day.year}年{day.month}月{day.day}日"
        return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"

    def short_date(self, day: dt.date) -> str:
        """For chart axes: ja ``5/12``, en ``12 May``."""
        if self.lang == "ja":
            return f"{day.month}/{day.day}"
        return f"{day.day} {_EN_MONTHS[day.month - 1]}"

    def weekday_date(self, day: dt.date) -> str:
        """ja ``2025年5月12日（月）``, en ``Mon 12 May 2025``."""
        if self.lang == "ja":
            return f"{self.date(day)}（{_JA_WEEKDAYS[day.weekday()]}）"
        return f"{_EN_WEEKDAYS[day.weekday()]} {self.date(day)}"

    def datetime(self, moment: dt.datetime | None, tz: dt.tzinfo) -> str:
        """An aware moment in the report's zone: ja ``2025年5月12日 09:30``."""
        if moment is None:
            return NOTHING
        local = moment.astimezone(tz)
        return f"{self.date(local.date())} {local:%H:%M}"

    def week(self, week: IsoWeek) -> str:
        """ja ``2025年 第20週``, en ``Week 20 of 2025``."""
        return self.t("report.week", week=week.week, year=week.year)

    def period(self, week: IsoWeek) -> str:
        """The week's first and last local days."""
        separator = "〜" if self.lang == "ja" else " – "
        return f"{self.weekday_date(week.monday)}{separator}{self.weekday_date(week.sunday)}"

    def quantity(self, value: float | None, kind: str) -> str:
        """A figure by kind: ``count`` (``12件``), ``customers`` (``12名``) or ``hours``."""
        if value is None:
            return NOTHING
        if kind == "hours":
            return self.hours(value)
        unit = "unit.customers" if kind == "customers" else "unit.count"
        return self.t(unit, value=self.number(value))

    def signed(self, delta: float | None, kind: str = "count") -> str:
        """A week-over-week difference with its sign: ``+3件`` / ``−1.5 h``."""
        if delta is None:
            return NOTHING
        if delta == 0:
            return self.t("change.none")
        sign = "+" if delta > 0 else "−"
        return f"{sign}{self.quantity(abs(delta), kind)}"

    def percent(self, value: float | None) -> str:
        """A relative change in brackets, ``(+12.5%)`` / ``（+12.5%）``; empty when undefined."""
        if value is None or value == 0:
            return ""
        sign = "+" if value > 0 else "−"
        return self.t("change.percent", value=f"{sign}{self.number(abs(value), 1)}%")
