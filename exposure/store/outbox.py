"""Named queries over the outbox, delivery attempts and webhook endpoint state.

Senders claim due rows under a lease (:mod:`exposure.store.leases`): a row must still be
pending, due and unleased when the claim lands, so two senders never both win it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Table, and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.dialect import insert_rows, timestamp_param, upsert
from exposure.store.exposure_detail import AttemptView
from exposure.store.leases import claim_rows, unleased
from exposure.store.models import DeliveryAttempt, OutboxEvent, WebhookEndpoint
from exposure.store.types import UTCDateTime

outbox = cast(Table, OutboxEvent.__table__)
attempts = cast(Table, DeliveryAttempt.__table__)
endpoints = cast(Table, WebhookEndpoint.__table__)

# Marks an operator's replay in the attempt history; the retry window restarts there.
REPLAYED = "replayed"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewEvent:
    """An event to queue: its webhook-id, type and body (JSON text, built by
    :mod:`exposure.delivery.payloads`), and the exposure it announces, if any."""

    event_id: str
    event_type: str
    payload: str
    exposure_id: str | None = None
    case_id: str | None = None


@dataclass(frozen=True, slots=True)
class DueEvent:
    """An outbox row this sender has claimed (and leased)."""

    id: int
    event_id: str
    payload: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    # Where the retry window runs from: creation, or the operator's latest replay.
    window_start: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptRecord:
    """One attempt's outcome and the outbox row's state after it."""

    outbox_id: int
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    outcome: str
    error: str | None
    state: str
    next_attempt_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class EndpointRow:
    url: str
    disabled_at: datetime | None
    disabled_reason: str | None


async def claim_due(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    due_by: datetime,
    lease_until: datetime,
    limit: int,
) -> list[DueEvent]:
    """Lease up to ``limit`` pending rows due by ``due_by`` whose lease (if any) has expired."""
    claimable = and_(
        outbox.c.state == "pending", outbox.c.next_attempt_at <= due_by, unleased(outbox, now)
    )
    claimed = await claim_rows(
        conn,
        outbox,
        claimable=claimable,
        order_by=(outbox.c.next_attempt_at, outbox.c.id),
        limit=limit,
        values={"lease_owner": owner, "lease_until": lease_until},
        returning=(
            outbox.c.id,
            outbox.c.event_id,
            outbox.c.payload,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.next_attempt_at,
        ),
    )
    # Only a row that was attempted before can have been replayed (replay needs a final state).
    replays = await _replayed_at(conn, [row.id for row in claimed if row.attempts])
    rows = [
        DueEvent(
            id=row.id,
            event_id=row.event_id,
            payload=row.payload,
            attempts=row.attempts,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            window_start=replays.get(row.id, row.created_at),
        )
        for row in claimed
    ]
    return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))


async def _replayed_at(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, datetime]:
    """When each row was last replayed by an operator (rows never replayed are absent)."""
    if not ids:
        return {}
    rows = await conn.execute(
        select(attempts.c.outbox_id, func.max(attempts.c.attempted_at))
        .where(attempts.c.outbox_id.in_(list(ids)), attempts.c.outcome == REPLAYED)
        .group_by(attempts.c.outbox_id)
    )
    # max() keeps the column's type, so the values come back as aware UTC datetimes.
    return {outbox_id: moment for outbox_id, moment in rows}


async def record_attempts(
    conn: AsyncConnection, owner: str, records: Sequence[AttemptRecord], *, again: bool = False
) -> None:
    """Write each attempt to the history and the row's new state, releasing the lease
    (``again``: a retry of the same records after a lost connection).

    The state update only applies while ``owner`` still holds the lease, so a sender that
    somehow outlived its lease cannot overwrite the work of the sender that took over.
    """
    if again:
        # Recording again after a lost connection: only rows still leased to ``owner``. If
        # the first commit landed and only its answer was lost, its rows are released already
        # and no second history line is written.
        held = await _held_by(conn, owner, [r.outbox_id for r in records])
        records = [r for r in records if r.outbox_id in held]
    if not records:
        return
    await conn.execute(
        insert(attempts),
        [
            {
                "outbox_id": r.outbox_id,
                "attempt": r.attempt,
                "attempted_at": r.attempted_at,
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "outcome": r.outcome,
                "error": r.error,
            }
            for r in records
        ],
    )
    await conn.execute(
        update(outbox)
        .where(outbox.c.id == bindparam("o_id"), outbox.c.lease_owner == bindparam("o_owner"))
        .values(
            state=bindparam("o_state"),
            attempts=bindparam("o_attempt"),
            next_attempt_at=bindparam("o_next", type_=UTCDateTime()),
            delivered_at=bindparam("o_delivered", type_=UTCDateTime()),
            last_status=bindparam("o_status"),
            last_error=bindparam("o_error"),
            lease_owner=None,
            lease_until=None,
        ),
        [
            {
                "o_id": r.outbox_id,
                "o_owner": owner,
                "o_state": r.state,
                "o_attempt": r.attempt,
                "o_next": r.next_attempt_at,
                "o_delivered": r.delivered_at,
                "o_status": r.status_code,
                "o_error": r.error,
            }
            for r in records
        ],
    )


async def _held_by(conn: AsyncConnection, owner: str, ids: Sequence[int]) -> set[int]:
    found = await conn.execute(
        select(outbox.c.id).where(outbox.c.id.in_(list(ids)), outbox.c.lease_owner == owner)
    )
    return set(found.scalars())


async def release(conn: AsyncConnection, owner: str, ids: Sequence[int]) -> None:
    """Give back leased rows that were never sent (endpoint disabled, or shutting down)."""
    if ids:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(list(ids)), outbox.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


async def enqueue(conn: AsyncConnection, events: Sequence[NewEvent], *, now: datetime) -> int:
    """Queue events, due now, in the caller's transaction (the one that decided them). An
    event whose id is queued already is skipped (ids derived from what they announce, such
    as a case state, make a repeat impossible); returns how many were queued."""
    stamp = timestamp_param(conn, now)
    rows = [
        (e.event_id, e.exposure_id, e.case_id, e.event_type, e.payload, "pending", 0, stamp, stamp)
        for e in events
    ]
    queued = await insert_rows(
        conn, outbox, _QUEUED_COLUMNS, rows, conflict_columns=("event_id",), returning="id"
    )
    return len(queued)


# The columns of a queued event, in the order enqueue gives them (as _row names them).
_QUEUED_COLUMNS = (
    "event_id",
    "exposure_id",
    "case_id",
    "event_type",
    "payload",
    "state",
    "attempts",
    "created_at",
    "next_attempt_at",
)


async def enqueue_once(conn: AsyncConnection, event: NewEvent, *, now: datetime) -> bool:
    """Queue an event whose id is derived from what it announces (a report's week), unless
    an event with that id is queued already; ``False`` then."""
    result = await conn.execute(
        upsert(conn, outbox)
        .values(**_row(event, now))
        .on_conflict_do_nothing(index_elements=[outbox.c.event_id])
    )
    return bool(result.rowcount)


def _row(event: NewEvent, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "exposure_id": event.exposure_id,
        "case_id": event.case_id,
        "event_type": event.event_type,
        "payload": event.payload,
        "state": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


async def count_pending(conn: AsyncConnection) -> int:
    result = await conn.execute(
        select(func.count()).select_from(outbox).where(outbox.c.state == "pending")
    )
    return int(result.scalar_one())


async def count_by_state(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
    counts = {state: 0 for state in ("pending", "delivered", "failed", "dead")}
    counts.update({state: int(n) for state, n in rows})
    return counts


async def replay(
    conn: AsyncConnection, *, now: datetime, event_ids: Sequence[str] = (), dead: bool = False
) -> list[str]:
    """Make events pending and due now, keeping their attempt history; returns their ids.

    Only events that are not already pending are touched. A ``replayed`` history entry marks
    the moment, which is where the event's retry window restarts.
    """
    condition = outbox.c.state != "pending"
    if dead:
        condition = and_(condition, outbox.c.state == "dead")
    else:
        condition = and_(condition, outbox.c.event_id.in_(list(event_ids)))
    rows = (
        await conn.execute(
            select(outbox.c.id, outbox.c.event_id, outbox.c.attempts).where(condition)
        )
    ).all()
    if not rows:
        return []
    await conn.execute(
        insert(attempts),
        [
            {"outbox_id": row.id, "attempt": row.attempts, "attempted_at": now, "outcome": REPLAYED}
            for row in rows
        ],
    )
    await conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([row.id for row in rows]))
        .values(
            state="pending",
            next_attempt_at=now,
            delivered_at=None,
            lease_owner=None,
            lease_until=None,
        )
    )
    return [row.event_id for row in rows]


EVENT_FIELDS = (
    "event_id",
    "exposure_id",
    "event_type",
    "state",
    "attempts",
    "last_status",
    "next_attempt_at",
    "last_error",
    "created_at",
    "delivered_at",
)


class EventListing(TypedDict):
    """One outbox event as ``deliveries`` lists it (``EVENT_FIELDS``; never the payload)."""

    event_id: str
    exposure_id: str | None
    event_type: str
    state: str
    attempts: int
    last_status: int | None
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


async def iter_events(
    conn: AsyncConnection, *, state: str | None = None
) -> AsyncIterator[EventListing]:
    """Outbox events, oldest first (never the payload)."""
    query = select(*(outbox.c[name] for name in EVENT_FIELDS)).order_by(outbox.c.id)
    if state is not None:
        query = query.where(outbox.c.state == state)
    result = await conn.stream(query)
    async for row in result:
        yield cast(EventListing, dict(row._mapping))


async def event_attempts(conn: AsyncConnection, event_id: str) -> list[AttemptView] | None:
    """The attempt history of one event, oldest first; ``None`` when there is no such event."""
    found = await conn.execute(select(outbox.c.id).where(outbox.c.event_id == event_id))
    outbox_id = found.scalar_one_or_none()
    if outbox_id is None:
        return None
    rows = await conn.execute(
        select(
            attempts.c.attempt,
            attempts.c.attempted_at,
            attempts.c.status_code,
            attempts.c.latency_ms,
            attempts.c.outcome,
            attempts.c.error,
        )
        .where(attempts.c.outbox_id == outbox_id)
        .order_by(attempts.c.id)
    )
    return [AttemptView(**row._mapping) for row in rows]


async def endpoint(conn: AsyncConnection, url: str) -> EndpointRow | None:
    result = await conn.execute(select(endpoints).where(endpoints.c.url == url))
    row = result.one_or_none()
    return None if row is None else EndpointRow(row.url, row.disabled_at, row.disabled_reason)


async def all_endpoints(conn: AsyncConnection) -> list[EndpointRow]:
    result = await conn.execute(select(endpoints).order_by(endpoints.c.url))
    return [EndpointRow(row.url, row.disabled_at, row.disabled_reason) for row in result]


async def disable_endpoint(conn: AsyncConnection, url: str, *, now: datetime, reason: str) -> None:
    values = {"disabled_at": now, "disabled_reason": reason}
    await conn.execute(
        upsert(conn, endpoints)
        .values(url=url, **values)
        .on_conflict_do_update(index_elements=[endpoints.c.url], set_=values)
    )


async def enable_endpoint(conn: AsyncConnection, url: str) -> bool:
    """Clear a disabled endpoint; ``False`` when it was not disabled."""
    result = await conn.execute(
        update(endpoints)
        .where(endpoints.c.url == url, endpoints.c.disabled_at.is_not(None))
        .values(disabled_at=None, disabled_reason=None)
    )
    return bool(result.rowcount)


async def dead_among(conn: AsyncConnection, event_ids: Sequence[str]) -> list[str]:
    """Which of ``event_ids`` are dead-lettered now."""
    if not event_ids:
        return []
    rows = await conn.execute(
        select(outbox.c.event_id).where(
            outbox.c.event_id.in_(list(event_ids)), outbox.c.state == "dead"
        )
    )
    return list(rows.scalars())


async def release_owned(conn: AsyncConnection, owner: str) -> int:
    """Give back every event ``owner`` holds: a daemon starting under its predecessor's owner
    id sends what that one claimed at once instead of after the lease (the receiver
    de-duplicates on ``webhook-id`` if the predecessor had sent some of them)."""
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
    return result.rowcount or 0
