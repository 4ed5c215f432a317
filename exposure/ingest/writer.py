"""Writing what an ingest learned, with its checkpoint, in the caller's ONE transaction.

Every way observations reach the store goes through :func:`write_observations`: the pipeline's
batches (:mod:`exposure.ingest.pipeline`) and HIBP's e-mail range matches
(:mod:`exposure.ingest.email_range_matches`). The store applies them as the lifecycle decides
(:func:`exposure.store.exposures.apply_observations`), the events it declares due become
outbox rows (bodies by :mod:`exposure.delivery.payloads`), the outcome is counted and the run's
checkpoint saved, so a crash leaves either all of it or none. Events are per case
(:mod:`exposure.domain.cases`): every new exposure joins its customer's case in this same
transaction, and an event is queued when a case opens or its action rises.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.delivery.payloads import exposure_webhook
from exposure.domain.lifecycle import Observation
from exposure.ingest.stats import RunStats
from exposure.store import exposures as exposure_queries
from exposure.store import ingest as ingest_queries
from exposure.store import outbox as outbox_queries


async def write_observations(
    conn: AsyncConnection,
    observations: Sequence[Observation],
    *,
    run_id: int,
    source: str,
    now: datetime,
    outcome: RunStats,
    reading: RunStats,
    ordinal: int,
    done: bool,
) -> None:
    """Apply ``observations``, queue the events due, count them into ``outcome``, and save
    the run's checkpoint at ``ordinal``: ``reading``'s counters as read up to it with
    ``outcome``'s once this write is counted. ``done`` completes the run."""
    applied = await exposure_queries.apply_observations(
        conn, observations, run_id=run_id, source=source, now=now
    )
    queued = await outbox_queries.enqueue(
        conn, [exposure_webhook(due, now=now) for due in applied.due], now=now
    )
    outcome.new_exposures.update(applied.new_by_action)
    outcome.escalations += applied.escalations
    outcome.sightings += applied.sightings
    outcome.events += queued
    checkpoint = outcome.with_reading(reading).as_json()
    await ingest_queries.save_checkpoint(conn, run_id, ordinal, checkpoint, done=done)
