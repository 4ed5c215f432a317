"""The console's worklist: what the security team has to act on, most urgent first.

This module is the one place that decides what a worklist row is (:class:`WorkItem`), which
rows match a filter (:class:`WorklistFilter`) and their order. Today a row is an exposure;
when cases arrive a row becomes a case, and only this module and the worklist template change.

Urgency: severity first (critical, high, medium, low), then how long the forced reset has
waited (the SLA clock, oldest first), then the id so that pages are stable. The SLA clock of a
row starts at :data:`SLA_CLOCK_START` (an exposure's ``first_seen``: the weekly report counts
SLA breaches from the same moment).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.domain.policy import Severity
from exposure.store.models import Exposure, IngestRun

exposures = cast(Table, Exposure.__table__)
ingest_runs = cast(Table, IngestRun.__table__)

SLA = timedelta(hours=24)
# When a row's forced reset started waiting.
SLA_CLOCK_START = exposures.c.first_seen
MAX_PAGE_SIZE = 200


class WorklistSort(StrEnum):
    URGENCY = "urgency"
    NEWEST = "newest"
    LAST_SEEN = "last_seen"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorklistFilter:
    """What the worklist shows; ``None`` means "any". ``state`` defaults to open rows.

    ``site`` matches the domain and its subdomains; ``customer`` is a customer-id prefix;
    ``since``/``until`` bound ``first_seen`` (half-open, aware UTC).
    """

    action: str | None = None
    state: str | None = "open"
    source: str | None = None
    leak_type: str | None = None
    site: str | None = None
    customer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: WorklistSort = WorklistSort.URGENCY


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """One worklist row (masked hint only, never an identifier)."""

    exposure_id: str
    customer_id: str
    identifier_kind: str
    identifier_hint: str
    password_status: str
    action: str
    severity: str
    leak_type: str
    site_domain: str
    source: str
    state: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    resolution: str | None
    resolved_at: datetime | None
    sla_started_at: datetime

    @property
    def sla_applies(self) -> bool:
        """The 24-hour clock runs for open forced resets."""
        return self.action == "force_reset" and self.state == "open"

    def waited(self, now: datetime) -> timedelta:
        """How long the forced reset has waited, to ``now`` (or to its resolution)."""
        return (self.resolved_at or now) - self.sla_started_at

    def sla_left(self, now: datetime) -> timedelta:
        """Time left before the SLA is breached; negative once it is."""
        return SLA - self.waited(now)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorklistPage:
    items: list[WorkItem]
    total: int
    offset: int
    limit: int


_ITEM_COLUMNS = [f.name for f in fields(WorkItem) if f.name != "sla_started_at"]


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((exposures.c.severity == s.value, s.rank) for s in Severity),
        else_=0,
    )


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with ``\\`` as the escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(query: Select[Any], where: WorklistFilter) -> Select[Any]:
    c = exposures.c
    if where.action is not None:
        query = query.where(c.action == where.action)
    if where.state is not None:
        query = query.where(c.state == where.state)
    if where.source is not None:
        query = query.where(c.source == where.source)
    if where.leak_type is not None:
        query = query.where(c.leak_type == where.leak_type)
    if where.site is not None:
        site = where.site.lower()
        query = query.where(
            or_(c.site_domain == site, c.site_domain.like(f"%.{escape_like(site)}", escape="\\"))
        )
    if where.customer is not None:
        query = query.where(c.customer_id.like(f"{escape_like(where.customer)}%", escape="\\"))
    if where.since is not None:
        query = query.where(c.first_seen >= where.since)
    if where.until is not None:
        query = query.where(c.first_seen < where.until)
    return query


def _order(where: WorklistFilter) -> list[Any]:
    c = exposures.c
    if where.sort is WorklistSort.NEWEST:
        return [c.first_seen.desc(), c.exposure_id]
    if where.sort is WorklistSort.LAST_SEEN:
        return [c.last_seen.desc(), c.exposure_id]
    return [_severity_rank().desc(), SLA_CLOCK_START, c.exposure_id]


async def worklist_page(
    conn: AsyncConnection, where: WorklistFilter, *, offset: int, limit: int
) -> WorklistPage:
    """One page of the worklist in ``where.sort`` order, and how many rows match in all."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    total = (
        await conn.execute(_where(select(func.count()).select_from(exposures), where))
    ).scalar_one()
    query = select(
        *(exposures.c[name] for name in _ITEM_COLUMNS), SLA_CLOCK_START.label("sla_started_at")
    )
    rows = await conn.execute(
        _where(query, where).order_by(*_order(where)).offset(max(offset, 0)).limit(limit)
    )
    items = [WorkItem(**{**row._mapping, "site_domain": row.site_domain or ""}) for row in rows]
    return WorklistPage(items=items, total=int(total), offset=max(offset, 0), limit=limit)


async def sources(conn: AsyncConnection) -> list[str]:
    """The sources ingests ran under, for the worklist's filter menu: every exposure is
    written by an ingest run under its source, and that table is small (a DISTINCT over
    the exposures would read them all on every page view)."""
    rows = await conn.execute(
        select(ingest_runs.c.source).distinct().order_by(ingest_runs.c.source)
    )
    return list(rows.scalars())


async def open_counts(conn: AsyncConnection, now: datetime) -> dict[str, int]:
    """Open rows by action, and open forced resets past the SLA right now (key ``overdue``)."""
    c = exposures.c
    rows = await conn.execute(
        select(c.action, func.count()).where(c.state == "open").group_by(c.action)
    )
    counts = {str(action): int(n) for action, n in rows}
    overdue = await conn.execute(
        select(func.count())
        .select_from(exposures)
        .where(c.state == "open", c.action == "force_reset", SLA_CLOCK_START < now - SLA)
    )
    counts["overdue"] = int(overdue.scalar_one())
    return counts
