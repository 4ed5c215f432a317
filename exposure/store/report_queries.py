"""Named read-only queries behind the weekly report and the dashboard.

Every function takes an open connection and aware UTC bounds ``[start, end)``; the report
package turns the results into figures. Nothing here returns an identifier hint: the report
holds no identifier, masked or not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure import JsonObject
from exposure.store.models import (
    Case,
    ConnectorRun,
    DeliveryAttempt,
    Exposure,
    IngestRun,
    OutboxEvent,
)

exposures = cast(Table, Exposure.__table__)
cases = cast(Table, Case.__table__)
outbox = cast(Table, OutboxEvent.__table__)
attempts = cast(Table, DeliveryAttempt.__table__)
ingest_runs = cast(Table, IngestRun.__table__)
connector_runs = cast(Table, ConnectorRun.__table__)

FORCE_RESET_EVENT = "exposure.force_reset"
RESET_COMPLETED = "reset_completed"
# Leak types whose site_domain is the site the stolen credential or cookie was used on.
STEALER_LEAK_TYPES = ("stealer_log", "session_cookie")


@dataclass(frozen=True, slots=True)
class NewExposureTotals:
    exposures: int
    customers: int
    live: int


@dataclass(frozen=True, slots=True)
class IngestRunRow:
    source: str
    started_at: datetime
    completed: bool
    stats: JsonObject  # the run's committed counters (lines, records, matched_records...)


@dataclass(frozen=True, slots=True)
class ConnectorWeek:
    connector: str
    runs: int
    records: int
    matched: int
    failed: int
    skipped: int
    last_success: datetime | None


@dataclass(frozen=True, slots=True)
class ConnectorLastRun:
    connector: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    records: int
    matched: int
    error_class: str | None


@dataclass(frozen=True, slots=True)
class WeekExposure:
    """One CSV row: an exposure first seen in the week."""

    exposure_id: str
    customer_id: str
    action: str
    password_status: str
    state: str
    leak_type: str
    source: str
    first_seen: datetime
    resolved_at: datetime | None
    site_domain: str
    severity: str
    identifier_kind: str


def _within(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


async def _counts(conn: AsyncConnection, query: Select[Any]) -> dict[str, int]:
    """A ``SELECT key, COUNT(*) ... GROUP BY key`` as a dict."""
    return {str(key): int(count) for key, count in await conn.execute(query)}


async def count_new_by(
    conn: AsyncConnection, column: str, start: datetime, end: datetime
) -> dict[str, int]:
    """Exposures first seen in ``[start, end)``, counted by one column (action, leak_type...)."""
    col = exposures.c[column]
    return await _counts(
        conn,
        select(col, func.count()).where(_within(exposures.c.first_seen, start, end)).group_by(col),
    )


async def new_exposure_totals(
    conn: AsyncConnection, start: datetime, end: datetime
) -> NewExposureTotals:
    """New exposures, distinct customers behind them, and how many carry a live password."""
    row = (
        await conn.execute(
            select(
                func.count(),
                func.count(func.distinct(exposures.c.customer_id)),
                func.coalesce(
                    func.sum(case((exposures.c.password_status == "live", 1), else_=0)),  # noqa: S105
                    0,
                ),
            ).where(_within(exposures.c.first_seen, start, end))
        )
    ).one()
    return NewExposureTotals(int(row[0]), int(row[1]), int(row[2]))


async def first_activity(conn: AsyncConnection) -> datetime | None:
    """The monitor's first recorded activity: the earliest exposure or ingest run."""
    exposure = (await conn.execute(select(func.min(exposures.c.first_seen)))).scalar_one()
    ingest = (await conn.execute(select(func.min(ingest_runs.c.started_at)))).scalar_one()
    known = [moment for moment in (exposure, ingest) if moment is not None]
    return min(known) if known else None


async def reset_requests(conn: AsyncConnection, start: datetime, end: datetime) -> int:
    """Distinct exposures for which a force_reset event was written in ``[start, end)``.

    The outbox row is written in the same transaction as the exposure that became force_reset
    (new, or escalated from notify), so it counts requests whether or not they were delivered.
    """
    query = select(func.count(func.distinct(outbox.c.exposure_id))).where(
        outbox.c.event_type == FORCE_RESET_EVENT, _within(outbox.c.created_at, start, end)
    )
    return int((await conn.execute(query)).scalar_one())


async def ingest_runs_in(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[IngestRunRow]:
    """Every ingest run started in ``[start, end)`` with its committed counters."""
    rows = await conn.execute(
        select(
            ingest_runs.c.source, ingest_runs.c.started_at, ingest_runs.c.state, ingest_runs.c.stats
        )
        .where(_within(ingest_runs.c.started_at, start, end))
        .order_by(ingest_runs.c.started_at)
    )
    return [IngestRunRow(r[0], r[1], r[2] == "completed", json.loads(r[3] or "{}")) for r in rows]


async def ingest_last_success(conn: AsyncConnection, end: datetime) -> dict[str, datetime | None]:
    """Every source that ever ran before ``end``, with its last completed run before ``end``."""
    finished = case(
        (
            and_(ingest_runs.c.state == "completed", ingest_runs.c.finished_at < end),
            ingest_runs.c.finished_at,
        ),
    )
    rows = await conn.execute(
        select(ingest_runs.c.source, func.max(finished))
        .where(ingest_runs.c.started_at < end)
        .group_by(ingest_runs.c.source)
    )
    return {row[0]: row[1] for row in rows}


async def connector_weeks(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[ConnectorWeek]:
    """Per connector that ever ran before ``end``: the week's runs and its last success."""
    c = connector_runs.c
    in_week = _within(c.started_at, start, end)

    def week_sum(value: Any) -> Any:
        return func.coalesce(func.sum(case((in_week, value), else_=0)), 0)

    last_success = func.max(
        case((and_(c.outcome == "success", c.finished_at < end), c.finished_at))
    )
    rows = await conn.execute(
        select(
            c.connector,
            week_sum(1),
            week_sum(c.records),
            week_sum(c.matched),
            week_sum(case((c.outcome == "failed", 1), else_=0)),
            week_sum(case((c.outcome == "skipped", 1), else_=0)),
            last_success,
        )
        .where(c.started_at < end)
        .group_by(c.connector)
        .order_by(c.connector)
    )
    return [
        ConnectorWeek(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), r[6])
        for r in rows
    ]


async def stealer_site_domains(
    conn: AsyncConnection, start: datetime, end: datetime
) -> dict[str, int]:
    """Site domains of stealer-log and stolen-cookie exposures first seen in the week."""
    return await _counts(
        conn,
        select(exposures.c.site_domain, func.count())
        .where(
            _within(exposures.c.first_seen, start, end),
            exposures.c.leak_type.in_(STEALER_LEAK_TYPES),
            exposures.c.site_domain != "",
        )
        .group_by(exposures.c.site_domain),
    )


async def outbox_created_by_state(
    conn: AsyncConnection, start: datetime, end: datetime
) -> dict[str, int]:
    """Webhook events written in the week, by their state now."""
    return await _counts(
        conn,
        select(outbox.c.state, func.count())
        .where(_within(outbox.c.created_at, start, end))
        .group_by(outbox.c.state),
    )


async def attempts_by_outcome(
    conn: AsyncConnection, start: datetime, end: datetime
) -> dict[str, int]:
    """Delivery attempts made in the week, by outcome (delivered, retry, dead, disabled)."""
    return await _counts(
        conn,
        select(attempts.c.outcome, func.count())
        .where(_within(attempts.c.attempted_at, start, end))
        .group_by(attempts.c.outcome),
    )


async def weekly_counts(
    conn: AsyncConnection, what: str, weeks: Sequence[tuple[datetime, datetime]]
) -> list[int]:
    """Per week in ``weeks``: new exposures (``what="new"``) or confirmed resets (``"reset"``:
    forced-reset cases resolved ``reset_completed``, one per case however many exposures it
    covers, in the week of their ``resolved_at``, a time recorded once).

    One query: a CASE maps each row to its week's index, so the bucketing follows the
    report's time-zone boundaries exactly rather than the database's idea of a week.
    """
    if what == "new":
        column, extra = exposures.c.first_seen, []
    elif what == "reset":
        column = cases.c.resolved_at
        extra = [
            cases.c.action == "force_reset",
            cases.c.force_reset_at.is_not(None),
            cases.c.resolution == RESET_COMPLETED,
        ]
    else:
        raise ValueError(f"unknown weekly count {what!r}")
    # A literal index, not a bound parameter, and GROUP BY the label: PostgreSQL would see a
    # GROUP BY with fresh parameters as a different expression from the selected one.
    bucket = case(
        *(
            (_within(column, start, end), literal_column(str(index)))
            for index, (start, end) in enumerate(weeks)
        )
    ).label("bucket")
    rows = await conn.execute(
        select(bucket, func.count())
        .where(column >= weeks[0][0], column < weeks[-1][1], *extra)
        .group_by(bucket)
    )
    counts = [0] * len(weeks)
    for index, count in rows:
        if index is not None:
            counts[int(index)] = int(count)
    return counts


async def iter_week_exposures(
    conn: AsyncConnection, start: datetime, end: datetime
) -> AsyncIterator[WeekExposure]:
    """Exposures first seen in ``[start, end)``, oldest first (the report's CSV rows)."""
    c = exposures.c
    result = await conn.stream(
        select(*(c[f.name] for f in fields(WeekExposure)))
        .where(_within(c.first_seen, start, end))
        .order_by(c.first_seen, c.exposure_id)
    )
    async for row in result:
        yield WeekExposure(*row)


# Dashboard: the state of things now rather than a week's figures.


async def open_by_action(conn: AsyncConnection) -> dict[str, int]:
    """Exposures whose state is ``open``, by action."""
    return await _counts(
        conn,
        select(exposures.c.action, func.count())
        .where(exposures.c.state == "open")
        .group_by(exposures.c.action),
    )


async def latest_connector_runs(conn: AsyncConnection) -> list[ConnectorLastRun]:
    """The most recent run of every connector."""
    c = connector_runs.c
    latest = (
        select(c.connector, func.max(c.started_at).label("started_at"))
        .group_by(c.connector)
        .subquery()
    )
    rows = await conn.execute(
        select(*(c[f.name] for f in fields(ConnectorLastRun)))
        .join(
            latest,
            and_(c.connector == latest.c.connector, c.started_at == latest.c.started_at),
        )
        .order_by(c.connector, c.id.desc())
    )
    seen: dict[str, ConnectorLastRun] = {}
    for r in rows:
        # Two runs started at the same instant: keep the later id.
        seen.setdefault(r[0], ConnectorLastRun(*r))
    return list(seen.values())


async def outbox_by_state(conn: AsyncConnection) -> tuple[dict[str, int], datetime | None]:
    """Every webhook event by state now, and when the oldest undelivered one was written."""
    by_state = await _counts(conn, select(outbox.c.state, func.count()).group_by(outbox.c.state))
    oldest = (
        await conn.execute(
            select(func.min(outbox.c.created_at)).where(outbox.c.state != "delivered")
        )
    ).scalar_one()
    return by_state, oldest
