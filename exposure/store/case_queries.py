"""Named queries that read cases: pages of cases for the API and the CLI, one case with its
exposures and webhook events, and the counts the dashboard and the weekly report show.

A case is one customer incident, ended by one reset or dismissal; its exposures point at it through
``exposures.case_id`` and the events announcing it through ``outbox.case_id``. Nothing here
writes: opening, escalating and resolving cases belong to the ingest writer and to
:mod:`exposure.triage.resolution`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, func, or_, select
from sqlalchemy import case as when
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.models import Case, Exposure, OutboxEvent, Sighting

cases = cast(Table, Case.__table__)
exposures = cast(Table, Exposure.__table__)
outbox = cast(Table, OutboxEvent.__table__)
sightings = cast(Table, Sighting.__table__)

CASE_STATES = ("open", "resolved")
MAX_CASE_EXPOSURES = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseFilter:
    """Which cases to list; ``None`` means any. ``since``/``until`` bound ``opened_at``
    (half-open, aware UTC)."""

    state: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CaseKeyset:
    """Position after the last case of a page, in ``(opened_at, case_id)`` order."""

    opened_at: datetime
    case_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseSummary:
    """One case as lists show it: the customer, the highest action and severity of its
    exposures, how many exposures it covers, and its resolution once it has one."""

    case_id: str
    customer_id: str
    state: str
    action: str
    severity: str
    opened_at: datetime
    updated_at: datetime
    force_reset_at: datetime | None
    resolution: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    exposure_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseExposure:
    """One exposure of a case (a masked hint only) and how many sightings it has."""

    exposure_id: str
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
    sightings: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseEvent:
    """A webhook event that announced the case (never its payload)."""

    event_id: str
    event_type: str
    state: str
    exposure_id: str | None
    attempts: int
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseDetail:
    case: CaseSummary
    exposures: tuple[CaseExposure, ...]
    exposures_total: int
    events: tuple[CaseEvent, ...]


_SUMMARY_COLUMNS = [f.name for f in fields(CaseSummary) if f.name != "exposure_count"]


def _exposure_count() -> Any:
    # Correlated and served by ix_exposures_case_id: one index range per case of the page.
    return (
        select(func.count())
        .where(exposures.c.case_id == cases.c.case_id)
        .scalar_subquery()
        .label("exposure_count")
    )


def _summary_select() -> Select[Any]:
    return select(*(cases.c[name] for name in _SUMMARY_COLUMNS), _exposure_count())


def _where(query: Select[Any], where: CaseFilter) -> Select[Any]:
    c = cases.c
    if where.state is not None:
        query = query.where(c.state == where.state)
    if where.action is not None:
        query = query.where(c.action == where.action)
    if where.since is not None:
        query = query.where(c.opened_at >= where.since)
    if where.until is not None:
        query = query.where(c.opened_at < where.until)
    return query


def _summary(row: Any) -> CaseSummary:
    return CaseSummary(**{**row._mapping, "exposure_count": int(row.exposure_count)})


async def case_page(
    conn: AsyncConnection, where: CaseFilter, *, after: CaseKeyset | None, limit: int
) -> tuple[list[CaseSummary], CaseKeyset | None]:
    """One page of cases, oldest opened first, and the keyset of the next page (None at the
    end). ``(opened_at, case_id)`` never changes, so paging is stable while cases open and
    escalate, as for exposures."""
    c = cases.c
    query = _where(_summary_select(), where).order_by(c.opened_at, c.case_id)
    if after is not None:
        # Spelled out rather than a row-value comparison, which older SQLite builds lack.
        query = query.where(
            or_(
                c.opened_at > after.opened_at,
                and_(c.opened_at == after.opened_at, c.case_id > after.case_id),
            )
        )
    rows = (await conn.execute(query.limit(limit + 1))).all()
    page = [_summary(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = page[-1]
    return page, CaseKeyset(last.opened_at, last.case_id)


async def iter_cases(conn: AsyncConnection, where: CaseFilter) -> AsyncIterator[CaseSummary]:
    """Every case matching ``where``, oldest opened first, a page at a time."""
    after: CaseKeyset | None = None
    while True:
        page, after = await case_page(conn, where, after=after, limit=500)
        for item in page:
            yield item
        if after is None:
            return


async def get_case(conn: AsyncConnection, case_id: str) -> CaseSummary | None:
    row = (await conn.execute(_summary_select().where(cases.c.case_id == case_id))).one_or_none()
    return None if row is None else _summary(row)


async def case_detail(
    conn: AsyncConnection, case_id: str, *, limit: int = MAX_CASE_EXPOSURES
) -> CaseDetail | None:
    """The case, its exposures (most severe first, at most ``limit``) with their sighting
    counts, and its webhook events oldest first; None when there is no such case."""
    summary = await get_case(conn, case_id)
    if summary is None:
        return None
    e = exposures.c
    seen = (
        select(func.count())
        .where(sightings.c.exposure_id == e.exposure_id)
        .scalar_subquery()
        .label("sightings")
    )
    names = [f.name for f in fields(CaseExposure) if f.name != "sightings"]
    rows = await conn.execute(
        select(*(e[name] for name in names), seen)
        .where(e.case_id == case_id)
        .order_by(_action_rank(e.action).desc(), e.first_seen, e.exposure_id)
        .limit(limit)
    )
    members = tuple(
        CaseExposure(**{**row._mapping, "site_domain": row.site_domain or ""}) for row in rows
    )
    o = outbox.c
    events = await conn.execute(
        select(
            o.event_id,
            o.event_type,
            o.state,
            o.exposure_id,
            o.attempts,
            o.created_at,
            o.delivered_at,
        )
        .where(o.case_id == case_id)
        .order_by(o.created_at, o.id)
    )
    return CaseDetail(
        case=summary,
        exposures=members,
        exposures_total=summary.exposure_count,
        events=tuple(CaseEvent(**row._mapping) for row in events),
    )


def _action_rank(column: Any) -> ColumnElement[int]:
    return when((column == "force_reset", 2), (column == "notify", 1), else_=0)


async def find_by_prefix(conn: AsyncConnection, prefix: str, *, limit: int = 2) -> list[str]:
    """Case ids starting with ``prefix`` (hex and hyphens only), at most ``limit``: the CLI
    accepts an unambiguous prefix of the id its table prints."""
    rows = await conn.execute(
        select(cases.c.case_id)
        .where(cases.c.case_id.like(f"{prefix}%"))
        .order_by(cases.c.case_id)
        .limit(limit)
    )
    return list(rows.scalars())


async def case_of_exposure(conn: AsyncConnection, exposure_id: str) -> str | None:
    """The case an exposure belongs to (None for no such exposure, or none recorded)."""
    row = (
        await conn.execute(
            select(exposures.c.case_id).where(exposures.c.exposure_id == exposure_id)
        )
    ).one_or_none()
    return None if row is None else row.case_id


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenCases:
    """Cases open now: how many by action, and how many forced resets are overdue (asked
    for before the cutoff and still open)."""

    by_action: dict[str, int]
    overdue: int


async def open_case_counts(conn: AsyncConnection, *, overdue_before: datetime) -> OpenCases:
    """Open cases by action, and open forced-reset cases whose reset was asked for before
    ``overdue_before``: the dashboard's "customers to reset" and its SLA card."""
    c = cases.c
    rows = await conn.execute(
        select(c.action, func.count()).where(c.state == "open").group_by(c.action)
    )
    overdue = await conn.execute(
        select(func.count())
        .select_from(cases)
        .where(c.state == "open", c.action == "force_reset", c.force_reset_at < overdue_before)
    )
    return OpenCases(
        by_action={str(action): int(n) for action, n in rows},
        overdue=int(overdue.scalar_one()),
    )


@dataclass(frozen=True, slots=True)
class OverdueCase:
    """A forced-reset case past its deadline; the only figure naming customers."""

    case_id: str
    customer_id: str
    force_reset_at: datetime


async def overdue_cases(
    conn: AsyncConnection, at: datetime, max_age: timedelta
) -> list[OverdueCase]:
    """Forced-reset cases still open at ``at`` whose reset was asked for (``force_reset_at``)
    more than ``max_age`` before, oldest request first.

    "Open at ``at``" means not resolved before ``at``: still open now, or resolved since, so a
    report re-run later shows what was open when its week ended (both times are recorded once).
    """
    c = cases.c
    rows = await conn.execute(
        select(c.case_id, c.customer_id, c.force_reset_at)
        .where(
            c.action == "force_reset",
            c.force_reset_at < at - max_age,
            or_(and_(c.state == "open", c.resolved_at.is_(None)), c.resolved_at >= at),
        )
        .order_by(c.force_reset_at, c.case_id)
    )
    return [OverdueCase(case_id, customer, asked) for case_id, customer, asked in rows]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseWeek:
    """The weekly report's "customers to reset": cases whose action is force_reset.

    ``asked``: their reset was asked for (``force_reset_at``) in the week; ``open_at_end``:
    asked for before the end and not resolved by then; ``resolved``: resolved in the week,
    either way; ``reset_hours``: hours from ``force_reset_at`` to ``resolved_at`` of each
    case whose reset was confirmed (``reset_completed``) in the week. Every bound is a time
    recorded once, so a past week's figures never change.
    """

    asked: int
    open_at_end: int
    resolved: int
    reset_hours: tuple[float, ...]


async def case_week(conn: AsyncConnection, start: datetime, end: datetime) -> CaseWeek:
    """:class:`CaseWeek` over ``[start, end)``."""
    c = cases.c
    forced = and_(c.action == "force_reset", c.force_reset_at.is_not(None))

    async def count(*where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(cases).where(forced, *where)
        return int((await conn.execute(query)).scalar_one())

    rows = await conn.execute(
        select(c.force_reset_at, c.resolved_at).where(
            forced,
            c.resolution == "reset_completed",
            c.resolved_at >= start,
            c.resolved_at < end,
        )
    )
    return CaseWeek(
        asked=await count(c.force_reset_at >= start, c.force_reset_at < end),
        open_at_end=await count(
            c.force_reset_at < end, or_(c.resolved_at.is_(None), c.resolved_at >= end)
        ),
        resolved=await count(c.resolved_at >= start, c.resolved_at < end),
        reset_hours=tuple(
            max((resolved - asked).total_seconds(), 0.0) / 3600 for asked, resolved in rows
        ),
    )
