"""Replaying webhook events: back to pending and due now, the attempt history kept, and one
audit entry per event replayed, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.store import audit as audit_log
from exposure.store import outbox
from exposure.store.audit import Actor, AuditAction


async def replay_events(
    engine: AsyncEngine,
    actor: Actor,
    *,
    event_ids: Sequence[str] = (),
    dead: bool = False,
    only_dead: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Replay ``event_ids`` (any that are not pending) or, with ``dead``, every dead-lettered
    event; ``only_dead`` restricts ``event_ids`` to dead ones (the console replays dead events
    only). Returns the ids replayed."""
    now = now or utcnow()
    async with engine.begin() as conn:
        if only_dead:
            event_ids = await outbox.dead_among(conn, event_ids)
            if not event_ids:
                return []
        replayed = await outbox.replay(conn, now=now, event_ids=event_ids, dead=dead)
        for event_id in replayed:
            await audit_log.record(conn, actor, AuditAction.EVENT_REPLAYED, target=event_id, at=now)
    return replayed
