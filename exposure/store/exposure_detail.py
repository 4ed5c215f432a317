"""Named queries behind the console's exposure page: the exposure, where it was seen, the
customer's masked identifier hints, and its webhook events with every delivery attempt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.models import (
    CustomerIdentifier,
    DeliveryAttempt,
    Exposure,
    OutboxEvent,
    Sighting,
)

exposures = cast(Table, Exposure.__table__)
sightings = cast(Table, Sighting.__table__)
identifiers = cast(Table, CustomerIdentifier.__table__)
outbox = cast(Table, OutboxEvent.__table__)
attempts = cast(Table, DeliveryAttempt.__table__)

MAX_SIGHTING_PLACES = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureView:
    """One exposure as the console shows it (the hint is masked; there is nothing else)."""

    exposure_id: str
    customer_id: str
    identifier_kind: str
    identifier_hint: str
    match_strength: str
    password_status: str
    action: str
    severity: str
    leak_type: str
    site_domain: str
    source: str
    has_pin: bool
    reason: str
    recommended_actions: tuple[str, ...]
    state: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    decided_at: datetime
    resolution: str | None
    resolved_at: datetime | None
    resolved_by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SightingPlace:
    """Every sighting at one place (source, file, line), with the first and last time."""

    source: str
    file: str
    line_no: int
    leak_type: str
    first_seen: datetime
    last_seen: datetime
    times: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptView:
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float | None
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventView:
    """A webhook event (never its payload) and its delivery attempts, oldest first."""

    event_id: str
    event_type: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    history: tuple[AttemptView, ...] = field(default=())


async def get_exposure(conn: AsyncConnection, exposure_id: str) -> ExposureView | None:
    c = exposures.c
    names = [f for f in ExposureView.__dataclass_fields__ if f != "recommended_actions"]
    row = (
        await conn.execute(
            select(*(c[name] for name in names), c.recommended_actions).where(
                c.exposure_id == exposure_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    values = dict(row._mapping)
    values["recommended_actions"] = tuple(json.loads(values["recommended_actions"] or "[]"))
    values["site_domain"] = values["site_domain"] or ""
    return ExposureView(**values)


async def sighting_places(
    conn: AsyncConnection, exposure_id: str, *, limit: int = MAX_SIGHTING_PLACES
) -> tuple[list[SightingPlace], int]:
    """Sightings grouped by place, most recently seen first (at most ``limit`` places), and
    how many places there are in all."""
    s = sightings.c
    group = (s.source, s.file, s.line_no, s.leak_type)
    total = (
        await conn.execute(
            select(func.count()).select_from(
                select(*group).where(s.exposure_id == exposure_id).group_by(*group).subquery()
            )
        )
    ).scalar_one()
    rows = await conn.execute(
        select(
            *group,
            func.min(s.seen_at).label("first_seen"),
            func.max(s.seen_at).label("last_seen"),
            func.count().label("times"),
        )
        .where(s.exposure_id == exposure_id)
        .group_by(*group)
        .order_by(func.max(s.seen_at).desc(), s.file, s.line_no)
        .limit(limit)
    )
    return [SightingPlace(**row._mapping) for row in rows], int(total)


async def customer_hints(conn: AsyncConnection, customer_id: str) -> list[tuple[str, str]]:
    """The customer's enrolled identifiers as (kind, masked hint), strict keys only."""
    rows = await conn.execute(
        select(identifiers.c.kind, identifiers.c.hint)
        .where(identifiers.c.customer_id == customer_id, identifiers.c.strength == "strict")
        .order_by(identifiers.c.kind, identifiers.c.hint)
    )
    return [(kind, hint) for kind, hint in rows]


async def exposure_events(conn: AsyncConnection, exposure_id: str) -> list[EventView]:
    """The exposure's webhook events, oldest first, each with its attempt history."""
    o, a = outbox.c, attempts.c
    events = (
        await conn.execute(
            select(
                o.id,
                o.event_id,
                o.event_type,
                o.state,
                o.attempts,
                o.created_at,
                o.next_attempt_at,
                o.delivered_at,
                o.last_status,
                o.last_error,
            )
            .where(o.exposure_id == exposure_id)
            .order_by(o.created_at, o.id)
        )
    ).all()
    if not events:
        return []
    history: dict[int, list[AttemptView]] = {row.id: [] for row in events}
    rows = await conn.execute(
        select(
            a.outbox_id,
            a.attempt,
            a.attempted_at,
            a.status_code,
            a.latency_ms,
            a.outcome,
            a.error,
        )
        .where(a.outbox_id.in_(list(history)))
        .order_by(a.id)
    )
    for row in rows:
        values = dict(row._mapping)
        history[values.pop("outbox_id")].append(AttemptView(**values))
    return [
        EventView(
            event_id=row.event_id,
            event_type=row.event_type,
            state=row.state,
            attempts=row.attempts,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            delivered_at=row.delivered_at,
            last_status=row.last_status,
            last_error=row.last_error,
            history=tuple(history[row.id]),
        )
        for row in events
    ]


async def find_by_prefix(conn: AsyncConnection, prefix: str, *, limit: int = 2) -> list[str]:
    """Exposure ids starting with ``prefix`` (hex and hyphens only), at most ``limit``: the CLI
    accepts an unambiguous prefix of the id it prints."""
    rows = await conn.execute(
        select(exposures.c.exposure_id)
        .where(exposures.c.exposure_id.like(f"{prefix}%"))
        .order_by(exposures.c.exposure_id)
        .limit(limit)
    )
    return list(rows.scalars())
