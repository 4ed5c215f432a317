"""The daemon's scheduled jobs, as data: one per configured connector, the chunks of large
drop-folder dumps, and the weekly report.

Each connector run loads a fresh enrolled index (customers enrolled since the last run are
matched) and goes through the same runner as ``exposure connectors run``. The report job
builds, keeps and mails the report, and announces it with a ``report.weekly`` webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.delivery.payloads import report_webhook
from exposure.ingest.connector_runner import configured_connectors, run_connector
from exposure.ingest.large_files import work
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.report.builder import produce_weekly_report
from exposure.runtime.scheduler import Job
from exposure.settings import Settings
from exposure.store import outbox
from exposure.store.leases import new_owner_id

log = logging.getLogger("exposure.runtime.daemon")


def connector_jobs(
    engine: AsyncEngine,
    settings: Settings,
    session: aiohttp.ClientSession,
    verifier: PasswordVerifier,
    stop: asyncio.Event,
    counters: Counter[str],
) -> list[Job]:
    """One job per ``EXPOSURE_CONNECTORS`` entry; settings are checked now, at start-up."""
    jobs = []
    for cls in configured_connectors(settings):
        name = cls.name

        async def run(name: str = name) -> object:
            if stop.is_set():
                return None
            # A fresh index per run (customers enrolled since are matched), loaded only
            # if the run brings something to match.
            ingestor = Ingestor(engine, settings, None, verifier)
            summary = await run_connector(
                engine, settings, session, ingestor, name, once=False, stop=stop
            )
            counters[f"connector_runs_{summary.outcome}"] += 1
            return summary

        schedule = cls.schedule(settings.environ)
        jobs.append(
            Job(
                name=f"connector:{name}",
                schedule=schedule.text,
                run=run,
                setting=cls.schedule_variable(),
                # Interval connectors (the drop folder) start working at once.
                run_at_start=schedule.interval_seconds is not None,
                quiet=(schedule.interval_seconds or 3600) < 300,
            )
        )
    return jobs


def chunks_job(
    engine: AsyncEngine,
    settings: Settings,
    verifier: PasswordVerifier,
    stop: asyncio.Event,
    counters: Counter[str],
) -> Job:
    """Every replica ingests claimable chunks of large dumps
    (:mod:`exposure.ingest.large_files`), one at a time until none is left. Deliberately not under
    the folder connector's advisory lock: the chunks are shared out row by row with ``FOR UPDATE
    SKIP LOCKED``, so all replicas help."""
    owner = new_owner_id()

    async def make_ingestor() -> Ingestor:
        # Loaded per job run, and only once a chunk was claimed: an idle tick is one query.
        return Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)

    async def run() -> object:
        done = await work(engine, make_ingestor, owner=owner, stop=stop)
        counters["chunks_ingested"] += len(done)
        return len(done)

    return Job(
        name="chunks",
        schedule="every 2s",
        run=run,
        setting="EXPOSURE_FOLDER_CHUNK_BYTES",  # fixed schedule: named only for completeness
        run_at_start=True,
        quiet=True,
    )


def report_job(engine: AsyncEngine, settings: Settings, counters: Counter[str]) -> Job:
    async def run() -> object:
        produced = await produce_weekly_report(engine, settings)
        async with engine.begin() as conn:
            report = produced.report
            now = utcnow()
            await outbox.enqueue_once(
                conn, report_webhook(report.week, report.figures, now=now), now=now
            )
        counters["reports"] += 1
        return str(produced.report.week)

    return Job(
        name="weekly-report",
        schedule=settings.report_schedule,
        run=run,
        setting="EXPOSURE_REPORT_SCHEDULE",
    )
