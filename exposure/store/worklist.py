"""The console's worklist: what the security team has to act on, most urgent first.

This module is the one place that decides what a worklist row is (:class:`WorkItem`), which
rows match a filter (:class:`WorklistFilter`) and their order. A row is a **case**: one
customer incident, which one forced reset (or one notice) ends, however many exposures it
covers. Filters on what leaked (source, leak type, site) match a case when any of its
exposures matches.

Urgency: severity first (critical, high, medium, low), then how long the forced reset has
waited (the SLA clock, oldest first), then the id so that pages are stable. The SLA clock of a
case starts at :data:`SLA_CLOCK_START`: when its action became ``force_reset`` (time-to-reset
in the weekly report counts from the same moment), or when it opened for other actions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.domain.cases import RESET_SLA
from exposure.domain.policy import Severity
from exposure.store.models import Case, Exposure, IngestRun

cases = cast(Table, Case.__table__)
exposures = cast(Table, Exposure.__table__)
ingest_runs = cast(Table, IngestRun.__table__)

# When a row's forced reset started waiting.
SLA_CLOCK_START = func.coalesce(cases.c.force_reset_at, cases.c.opened_at)
MAX_PAGE_SIZE = 200
# The worklist's states: an open case, or how a resolved one ended.
RESOLUTION_STATES = ("reset_completed", "dismissed")


class WorklistSort(StrEnum):
    URGENCY = "urgency"
    NEWEST = "newest"
    LAST_SEEN = "last_seen"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorklistFilter:
    """What the worklist shows; ``None`` means "any". ``state`` is ``open`` (the default) or
    a resolution (``reset_completed``, ``dismissed``).

    ``source``, ``leak_type`` and ``site`` match a case through any of its exposures; ``site``
    matches the domain and its subdomains; ``customer`` is a customer-id prefix;
    ``since``/``until`` bound the case's ``opened_at`` (half-open, aware UTC).
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
    """One worklist row: a case (ids and counts only, never an identifier)."""

    case_id: str
    customer_id: str
    action: str
    severity: str
    state: str
    resolution: str | None
    opened_at: datetime
    updated_at: datetime
    force_reset_at: datetime | None
    resolved_at: datetime | None
    exposure_count: int
    sla_started_at: datetime

    @property
    def status(self) -> str:
        """``open``, or how the case ended (the worklist's state column and filter)."""
        return self.resolution or self.state

    @property
    def sla_applies(self) -> bool:
        """The 24-hour clock runs for open forced resets."""
        return self.action == "force_reset" and self.state == "open"

    def waited(self, now: datetime) -> timedelta:
        """How long the forced reset has waited, to ``now`` (or to its resolution)."""
        return (self.resolved_at or now) - self.sla_started_at

    def sla_left(self, now: datetime) -> timedelta:
        """Time left before the SLA is breached; negative once it is."""
        return RESET_SLA - self.waited(now)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorklistPage:
    items: list[WorkItem]
    total: int
    offset: int
    limit: int


_CASE_COLUMNS = [
    f.name for f in fields(WorkItem) if f.name not in ("sla_started_at", "exposure_count")
]


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((cases.c.severity == s.value, s.rank) for s in Severity),
        else_=0,
    )


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with ``\\`` as the escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _member_conditions(where: WorklistFilter) -> list[ColumnElement[bool]]:
    e = exposures.c
    conditions: list[ColumnElement[bool]] = []
    if where.source is not None:
        conditions.append(e.source == where.source)
    if where.leak_type is not None:
        conditions.append(e.leak_type == where.leak_type)
    if where.site is not None:
        site = where.site.lower()
        conditions.append(
            or_(e.site_domain == site, e.site_domain.like(f"%.{escape_like(site)}", escape="\\"))
        )
    return conditions


def _where(query: Select[Any], where: WorklistFilter) -> Select[Any]:
    c = cases.c
    if where.action is not None:
        query = query.where(c.action == where.action)
    if where.state == "open":
        query = query.where(c.state == "open")
    elif where.state is not None:
        query = query.where(c.resolution == where.state)
    if where.customer is not None:
        query = query.where(c.customer_id.like(f"{escape_like(where.customer)}%", escape="\\"))
    if where.since is not None:
        query = query.where(c.opened_at >= where.since)
    if where.until is not None:
        query = query.where(c.opened_at < where.until)
    members = _member_conditions(where)
    if members:
        # Served by ix_exposures_case_id: only the exposures of each candidate case are read.
        query = query.where(exists().where(and_(exposures.c.case_id == c.case_id, *members)))
    return query


def _order(where: WorklistFilter) -> list[Any]:
    c = cases.c
    if where.sort is WorklistSort.NEWEST:
        return [c.opened_at.desc(), c.case_id]
    if where.sort is WorklistSort.LAST_SEEN:
        return [c.updated_at.desc(), c.case_id]
    return [_severity_rank().desc(), SLA_CLOCK_START, c.case_id]


async def worklist_page(
    conn: AsyncConnection, where: WorklistFilter, *, offset: int, limit: int
) -> WorklistPage:
    """One page of the worklist in ``where.sort`` order, and how many rows match in all."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    total = (
        await conn.execute(_where(select(func.count()).select_from(cases), where))
    ).scalar_one()
    count = (
        select(func.count())
        .where(exposures.c.case_id == cases.c.case_id)
        .scalar_subquery()
        .label("exposure_count")
    )
    query = select(
        *(cases.c[name] for name in _CASE_COLUMNS),
        count,
        SLA_CLOCK_START.label("sla_started_at"),
    )
    rows = await conn.execute(
        _where(query, where).order_by(*_order(where)).offset(max(offset, 0)).limit(limit)
    )
    items = [WorkItem(**row._mapping) for row in rows]
    return WorklistPage(items=items, total=int(total), offset=max(offset, 0), limit=limit)


async def sources(conn: AsyncConnection) -> list[str]:
    """The sources ingests ran under, for the worklist's filter menu: every exposure is
    written by an ingest run under its source, and that table is small (a DISTINCT over
    the exposures would read them all on every page view)."""
    rows = await conn.execute(
        select(ingest_runs.c.source).distinct().order_by(ingest_runs.c.source)
    )
    return list(rows.scalars())
