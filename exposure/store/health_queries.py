"""Named queries behind the console's health page: connectors, the delivery backlog and dead
events, the leaked-password corpus fold backlog, and recent ingests with their rejections."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store import corpus_segments
from exposure.store.models import (
    ConnectorRun,
    CorpusPending,
    IngestRun,
    OutboxEvent,
    WebhookEndpoint,
)

connector_runs = cast(Table, ConnectorRun.__table__)
outbox = cast(Table, OutboxEvent.__table__)
endpoints = cast(Table, WebhookEndpoint.__table__)
pending = cast(Table, CorpusPending.__table__)
ingest_runs = cast(Table, IngestRun.__table__)

OUTBOX_STATES = ("pending", "failed", "dead", "delivered")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    started_at: datetime
    finished_at: datetime | None
    records: int
    error_class: str | None
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorHealth:
    connector: str
    last_outcome: str
    last_started_at: datetime
    last_success: RunOutcome | None
    last_failure: RunOutcome | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadEvent:
    event_id: str
    exposure_id: str | None
    event_type: str
    created_at: datetime
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryBacklog:
    by_state: Mapping[str, int]
    oldest_undelivered: datetime | None
    next_attempt_at: datetime | None
    disabled_endpoints: tuple[tuple[str, datetime, str | None], ...]
    dead: tuple[DeadEvent, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusBacklog:
    rows: int
    digests: int
    oldest_staged_at: datetime | None
    # Folded (served by /range) but not yet settled into the corpus table: a figure that
    # only grows while ingests outrun the settling.
    unsettled_records: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RecentIngest:
    run_id: int
    source: str
    input_name: str
    state: str
    started_at: datetime
    finished_at: datetime | None
    lines: int
    records: int
    matched: int
    rejected: Mapping[str, int] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


async def connectors(conn: AsyncConnection) -> list[ConnectorHealth]:
    """Every connector that ever ran: its latest run, last success and last failure."""
    c = connector_runs.c
    latest: dict[str, tuple[str, datetime]] = {}
    success: dict[str, RunOutcome] = {}
    failure: dict[str, RunOutcome] = {}
    rows = await conn.execute(
        select(
            c.connector, c.outcome, c.started_at, c.finished_at, c.records, c.error_class, c.error
        ).order_by(c.started_at.desc(), c.id.desc())
    )
    # Newest first: the first row per connector (and per outcome) is the one to keep. One scan
    # of a table that grows by a few rows an hour.
    for row in rows:
        latest.setdefault(row.connector, (row.outcome, row.started_at))
        outcome = RunOutcome(
            started_at=row.started_at,
            finished_at=row.finished_at,
            records=row.records,
            error_class=row.error_class,
            error=row.error,
        )
        if row.outcome == "success":
            success.setdefault(row.connector, outcome)
        elif row.outcome == "failed":
            failure.setdefault(row.connector, outcome)
    return [
        ConnectorHealth(
            connector=name,
            last_outcome=latest[name][0],
            last_started_at=latest[name][1],
            last_success=success.get(name),
            last_failure=failure.get(name),
        )
        for name in sorted(latest)
    ]


async def delivery_backlog(conn: AsyncConnection, *, dead_limit: int = 50) -> DeliveryBacklog:
    """Events by state, the oldest undelivered one, the next attempt due, disabled endpoints
    and the most recent dead-lettered events."""
    o = outbox.c
    by_state = {s: 0 for s in OUTBOX_STATES}
    for state, count in await conn.execute(select(o.state, func.count()).group_by(o.state)):
        by_state[str(state)] = int(count)
    oldest = (
        await conn.execute(select(func.min(o.created_at)).where(o.state != "delivered"))
    ).scalar_one()
    due = (
        await conn.execute(select(func.min(o.next_attempt_at)).where(o.state == "pending"))
    ).scalar_one()
    disabled = await conn.execute(
        select(endpoints.c.url, endpoints.c.disabled_at, endpoints.c.disabled_reason)
        .where(endpoints.c.disabled_at.is_not(None))
        .order_by(endpoints.c.url)
    )
    dead = await conn.execute(
        select(o.event_id, o.exposure_id, o.event_type, o.created_at, o.last_status, o.last_error)
        .where(o.state == "dead")
        .order_by(o.created_at.desc(), o.id.desc())
        .limit(dead_limit)
    )
    return DeliveryBacklog(
        by_state=by_state,
        oldest_undelivered=oldest,
        next_attempt_at=due,
        disabled_endpoints=tuple((r[0], r[1], r[2]) for r in disabled),
        dead=tuple(DeadEvent(**row._mapping) for row in dead),
    )


async def corpus_backlog(conn: AsyncConnection) -> CorpusBacklog:
    """Staged leaked-password digests not yet folded into the corpus ``/range`` serves, and
    folded ones not yet settled into its table."""
    row = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(pending.c.digest_count), 0),
                func.min(pending.c.staged_at),
            )
        )
    ).one()
    return CorpusBacklog(
        rows=int(row[0]),
        digests=int(row[1]),
        oldest_staged_at=row[2],
        unsettled_records=await corpus_segments.waiting_records(conn),
    )


async def recent_ingests(conn: AsyncConnection, *, limit: int = 20) -> list[RecentIngest]:
    """The latest ingest runs with their committed counters and rejected lines by reason."""
    r = ingest_runs.c
    rows = await conn.execute(
        select(r.id, r.source, r.input_name, r.state, r.started_at, r.finished_at, r.stats)
        .order_by(r.started_at.desc(), r.id.desc())
        .limit(limit)
    )
    result = []
    for row in rows:
        stats = json.loads(row.stats or "{}")
        rejected = stats.get("rejected") or {}
        result.append(
            RecentIngest(
                run_id=row.id,
                source=row.source,
                input_name=row.input_name,
                state=row.state,
                started_at=row.started_at,
                finished_at=row.finished_at,
                lines=int(stats.get("lines", 0)),
                records=int(stats.get("records", 0)),
                matched=int(stats.get("matched_records", 0)),
                rejected={str(k): int(v) for k, v in rejected.items()},
            )
        )
    return result
