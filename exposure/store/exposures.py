"""Named queries over exposures, their sightings and the outbox."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.delivery.payloads import ExposureFacts, exposure_event, new_event_id
from exposure.domain.policy import Action, Decision, Severity, escalates
from exposure.store.dialect import in_lists, upsert
from exposure.store.models import Exposure, OutboxEvent, Sighting

exposures = cast(Table, Exposure.__table__)
sightings = cast(Table, Sighting.__table__)
outbox = cast(Table, OutboxEvent.__table__)


@dataclass(frozen=True, slots=True)
class ExposureKey:
    """The contract's identity of an exposure (empty bytes / string for "none")."""

    customer_id: str
    identifier_kind: str
    password_fp: bytes = field(repr=False)
    site_domain: str


@dataclass(frozen=True, slots=True)
class SightingAt:
    ordinal: int
    file: str
    line_no: int
    leak_type: str


@dataclass(slots=True)
class Observation:
    """Everything one batch learned about one exposure key: the strongest decision among its
    records, and every place it was seen."""

    key: ExposureKey
    strength: str
    password_status: str
    decision: Decision
    leak_type: str
    has_pin: bool
    hint: str
    sightings: list[SightingAt] = field(default_factory=list)

    def rank(self) -> tuple[int, int, int]:
        return (
            self.decision.action.rank,
            self.decision.severity.rank,
            1 if self.strength == "strict" else 0,
        )


@dataclass(slots=True)
class Applied:
    new_by_action: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    sightings: int = 0
    events: int = 0


async def apply_observations(
    conn: AsyncConnection,
    observations: Sequence[Observation],
    *,
    run_id: int,
    source: str,
    now: datetime,
) -> Applied:
    """Create or update one exposure per observation, record its sightings, and write an outbox
    event for each new exposure and each escalation of the action, all in the caller's
    transaction. New exposures, events and sightings are written one statement per table (a
    large dump brings thousands at once); updates of known exposures go one by one."""
    applied = Applied()
    # Insert first: in a large dump most observations are new, and RETURNING tells which
    # were. Only the rest (known exposures, or one another ingest created meanwhile) are read
    # back, to be updated.
    new_ids = {o.key: str(uuid.uuid4()) for o in observations}
    inserted = await _insert(conn, observations, new_ids, source=source, now=now)
    known = [o.key for o in observations if new_ids[o.key] not in inserted]
    existing = await _existing(conn, known) if known else {}
    events: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    for obs in observations:
        exposure_id = new_ids[obs.key]
        if exposure_id in inserted:
            applied.new_by_action[obs.decision.action] += 1
            if obs.decision.action is not Action.NONE:
                events.append(_event(exposure_id, obs, source=source, first_seen=now, now=now))
            seen.extend(_sightings(exposure_id, obs, run_id=run_id, source=source, now=now))
            continue
        row = existing[obs.key]
        if await _update(conn, row, obs, now=now):
            applied.escalations += 1
            events.append(
                _event(row.exposure_id, obs, source=row.source, first_seen=row.first_seen, now=now)
            )
        seen.extend(_sightings(row.exposure_id, obs, run_id=run_id, source=source, now=now))
    if events:
        await conn.execute(insert(outbox), events)
    if seen:
        await conn.execute(upsert(conn, sightings).on_conflict_do_nothing(), seen)
    applied.events, applied.sightings = len(events), len(seen)
    return applied


async def _existing(
    conn: AsyncConnection, keys: Sequence[ExposureKey]
) -> dict[ExposureKey, Row[Any]]:
    found: dict[ExposureKey, Row[Any]] = {}
    wanted = set(keys)
    for customer_ids in in_lists([k.customer_id for k in keys]):
        rows = await conn.execute(
            select(exposures).where(exposures.c.customer_id.in_(customer_ids))
        )
        for row in rows:
            key = ExposureKey(
                row.customer_id, row.identifier_kind, bytes(row.password_fp), row.site_domain
            )
            if key in wanted:
                found[key] = row
    return found


async def _insert(
    conn: AsyncConnection,
    observations: Sequence[Observation],
    new_ids: dict[ExposureKey, str],
    *,
    source: str,
    now: datetime,
) -> set[str]:
    """Insert the observations under their ids in ``new_ids``; return the ids inserted (an
    exposure that exists already is skipped, not overwritten)."""
    rows = [
        {
            "exposure_id": new_ids[obs.key],
            "customer_id": obs.key.customer_id,
            "identifier_kind": obs.key.identifier_kind,
            "password_fp": obs.key.password_fp,
            "site_domain": obs.key.site_domain,
            "match_strength": obs.strength,
            "password_status": obs.password_status,
            "action": obs.decision.action.value,
            "severity": obs.decision.severity.value,
            "leak_type": obs.leak_type,
            "has_pin": obs.has_pin,
            "reason": obs.decision.reason,
            "recommended_actions": json.dumps(list(obs.decision.recommended_actions)),
            "source": source,
            "identifier_hint": obs.hint,
            "state": "open",
            "first_seen": now,
            "last_seen": now,
            "occurrences": len(obs.sightings),
            "decided_at": now,
        }
        for obs in observations
    ]
    if not rows:
        return set()
    result = await conn.execute(
        upsert(conn, exposures).on_conflict_do_nothing().returning(exposures.c.exposure_id), rows
    )
    return set(result.scalars())


async def _update(conn: AsyncConnection, row: Row[Any], obs: Observation, *, now: datetime) -> bool:
    """Bump the counters; adopt the new decision when it is stronger. True when the action rose."""
    values: dict[str, Any] = {
        "last_seen": now,
        "occurrences": exposures.c.occurrences + len(obs.sightings),
    }
    old_rank = (
        Action(row.action).rank,
        Severity(row.severity).rank,
        1 if row.match_strength == "strict" else 0,
    )
    if obs.rank() > old_rank:
        values |= {
            "match_strength": obs.strength,
            "password_status": obs.password_status,
            "action": obs.decision.action.value,
            "severity": obs.decision.severity.value,
            "leak_type": obs.leak_type,
            "has_pin": obs.has_pin or row.has_pin,
            "reason": obs.decision.reason,
            "recommended_actions": json.dumps(list(obs.decision.recommended_actions)),
            "decided_at": now,
        }
    escalated = escalates(Action(row.action), obs.decision.action)
    if escalated and row.state != "open":
        # Stronger evidence after a resolution (e.g. a dismissed notify that now proves a live
        # password) reopens the exposure: the reset service gets a new event to act on.
        values |= {"state": "open", "resolution": None, "resolved_at": None, "resolved_by": None}
    await conn.execute(
        update(exposures).where(exposures.c.exposure_id == row.exposure_id).values(**values)
    )
    return escalated


def _event(
    exposure_id: str,
    obs: Observation,
    *,
    source: str,
    first_seen: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The outbox row announcing this exposure's (new or escalated) decision."""
    facts = ExposureFacts(
        exposure_id=exposure_id,
        customer_id=obs.key.customer_id,
        action=obs.decision.action.value,
        severity=obs.decision.severity.value,
        password_status=obs.password_status,
        identifier_kind=obs.key.identifier_kind,
        leak_type=obs.leak_type,
        site_domain=obs.key.site_domain or None,
        source=source,
        first_seen=first_seen,
        reason=obs.decision.reason,
        recommended_actions=obs.decision.recommended_actions,
    )
    event_type, body = exposure_event(facts, now=now)
    return {
        "event_id": new_event_id(),
        "exposure_id": exposure_id,
        "event_type": event_type,
        "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        "state": "pending",
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }


def _sightings(
    exposure_id: str, obs: Observation, *, run_id: int, source: str, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "exposure_id": exposure_id,
            "run_id": run_id,
            "ordinal": s.ordinal,
            "source": source,
            "file": s.file,
            "line_no": s.line_no,
            "leak_type": s.leak_type,
            "seen_at": now,
        }
        for s in obs.sightings
    ]


EXPOSURE_FIELDS = (
    "exposure_id",
    "customer_id",
    "identifier_kind",
    "identifier_hint",
    "match_strength",
    "password_status",
    "action",
    "severity",
    "leak_type",
    "site_domain",
    "source",
    "first_seen",
    "last_seen",
    "occurrences",
    "state",
    "reason",
    "recommended_actions",
)


async def iter_exposures(
    conn: AsyncConnection,
    *,
    action: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Exposures, oldest first, as plain dicts with the contract's field names."""
    query = select(*(exposures.c[name] for name in EXPOSURE_FIELDS)).order_by(
        exposures.c.first_seen, exposures.c.exposure_id
    )
    if action is not None:
        query = query.where(exposures.c.action == action)
    if state is not None:
        query = query.where(exposures.c.state == state)
    if since is not None:
        query = query.where(exposures.c.last_seen >= since)
    result = await conn.stream(query)
    async for row in result:
        item = dict(row._mapping)
        item["site_domain"] = item["site_domain"] or None
        item["recommended_actions"] = json.loads(item["recommended_actions"])
        yield item
