"""The daemon's scheduled jobs, as data: one per configured connector, and the weekly report.

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

from exposure.connector_runs import configured_connectors, run_connector
from exposure.passwords import PasswordVerifier
from exposure.pipeline import Ingestor
from exposure.report.builder import produce_weekly_report
from exposure.scheduler import Job
from exposure.settings import Settings
from exposure.store.outbox import enqueue_report_event

log = logging.getLogger("exposure.daemon")


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
            index = await Ingestor.load_index(engine)
            ingestor = Ingestor(engine, settings, index, verifier)
            summary = await run_connector(
                engine, settings, session, ingestor, name, once=False, stop=stop
            )
            counters[f"connector_runs_{summary.get('outcome', 'unknown')}"] += 1
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
            )
        )
    return jobs


def report_job(engine: AsyncEngine, settings: Settings, counters: Counter[str]) -> Job:
    async def run() -> object:
        produced = await produce_weekly_report(engine, settings)
        async with engine.begin() as conn:
            await enqueue_report_event(conn, produced.report.week, produced.report.figures)
        counters["reports"] += 1
        return str(produced.report.week)

    return Job(
        name="weekly-report",
        schedule=settings.report_schedule,
        run=run,
        setting="EXPOSURE_REPORT_SCHEDULE",
    )
