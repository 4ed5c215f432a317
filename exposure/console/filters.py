"""Reading the console's filter forms (query strings) into the store's filter values.

A value that cannot be used (an unknown action, a malformed date) is dropped and reported
back by name, so the page still shows the rest instead of an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from exposure.domain.policy import Action
from exposure.report.figures import LEAK_TYPES
from exposure.store.audit import AuditAction, AuditFilter, Channel
from exposure.store.worklist import WorklistFilter, WorklistSort

PAGE_SIZE = 50
STATES = ("open", "reset_completed", "dismissed")
ANY = "any"
_SITE = re.compile(r"[a-z0-9.-]{1,253}")
_ID_TEXT = re.compile(r"[\x21-\x7e]{1,160}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,160}")
MAX_PAGE = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """Filter values for the store, the page number, what the form should show again, and
    the names of fields whose values were not understood (and were ignored)."""

    page: int
    values: Mapping[str, str]
    ignored: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorklistQuery(Parsed):
    where: WorklistFilter


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery(Parsed):
    where: AuditFilter


def _day(text: str, tz: tzinfo, *, end: bool) -> datetime:
    """A local calendar day (``YYYY-MM-DD``) as aware UTC: its start, or the next day's."""
    day = date.fromisoformat(text)
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _page(text: str | None) -> int:
    if text is None or not text.isdigit():
        return 1
    return max(1, min(int(text), MAX_PAGE))


class _Reader:
    def __init__(self, query: Mapping[str, str]) -> None:
        self.query = query
        self.values: dict[str, str] = {}
        self.ignored: list[str] = []

    def text(self, name: str) -> str | None:
        value = self.query.get(name, "").strip()
        return value or None

    def choice(self, name: str, choices: tuple[str, ...] | list[str]) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if value not in choices:
            self.ignored.append(name)
            return None
        self.values[name] = value
        return value

    def pattern(self, name: str, pattern: re.Pattern[str], *, lower: bool = False) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        if lower:
            value = value.lower()
        if not pattern.fullmatch(value):
            self.ignored.append(name)
            return None
        self.values[name] = value
        return value

    def day(self, name: str, tz: tzinfo, *, end: bool) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            moment = _day(value, tz, end=end)
        except (ValueError, OverflowError):
            self.ignored.append(name)
            return None
        self.values[name] = value
        return moment


def worklist_query(query: Mapping[str, str], tz: tzinfo) -> WorklistQuery:
    """The worklist's filters; ``state`` is ``open`` unless the form asks for another (or
    ``any``)."""
    read = _Reader(query)
    state_text = read.choice("state", (*STATES, ANY)) or "open"
    read.values["state"] = state_text
    sort = read.choice("sort", tuple(s.value for s in WorklistSort)) or WorklistSort.URGENCY
    since = read.day("since", tz, end=False)
    until = read.day("until", tz, end=True)
    where = WorklistFilter(
        action=read.choice("action", tuple(a.value for a in Action)),
        state=None if state_text == ANY else state_text,
        source=read.pattern("source", _NAME),
        leak_type=read.choice("leak_type", LEAK_TYPES),
        site=read.pattern("site", _SITE, lower=True),
        customer=read.pattern("customer", _NAME),
        since=since,
        until=until,
        sort=WorklistSort(sort),
    )
    return WorklistQuery(
        where=where,
        page=_page(query.get("page")),
        values=read.values,
        ignored=tuple(sorted(read.ignored)),
    )


def audit_query(query: Mapping[str, str], tz: tzinfo) -> AuditQuery:
    """The audit log's filters."""
    read = _Reader(query)
    where = AuditFilter(
        action=read.choice("action", tuple(a.value for a in AuditAction)),
        channel=read.choice("channel", tuple(c.value for c in Channel)),
        actor=read.pattern("actor", _NAME),
        target=read.pattern("target", _ID_TEXT),
        since=read.day("since", tz, end=False),
        until=read.day("until", tz, end=True),
    )
    return AuditQuery(
        where=where,
        page=_page(query.get("page")),
        values=read.values,
        ignored=tuple(sorted(read.ignored)),
    )
