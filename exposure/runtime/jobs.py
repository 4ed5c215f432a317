"""The daemon's scheduled jobs, as data: one per configured connector, the chunks of large
drop-folder dumps, and the weekly report.

Each connector run loads a fresh enrolled index (customers enrolled since the last run are
matched) and goes through the same runner as ``exposure connectors run``. A connector that
can watch its source (the drop folder) is also run as soon as the source changes: its job
then runs from both the schedule (the fallback) and the watcher, never twice at once, and a
change seen during a run makes it run once more (:class:`Coalesced`). The report job builds,
keeps and mails the report, and announces it with a ``report.weekly`` webhook.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Connector
from exposure.clock import utcnow
from exposure.delivery.payloads import report_webhook
from exposure.ingest.connector_runner import configured_connectors, run_connector
from exposure.ingest.large_files import work
from exposure.ingest.matching import EnrolledIndex
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.report.builder import produce_weekly_report
from exposure.runtime.scheduler import Job
from exposure.settings import Settings
from exposure.store import outbox
from exposure.store.reconnect import Backoff, retrying

log = logging.getLogger("exposure.runtime.daemon")


@dataclass(frozen=True, slots=True)
class IngestWiring:
    """What every ingesting job shares: the engine, the settings, the process's password
    verifier, and what to call when an ingest queued webhook events (the delivery loop's
    wake-up)."""

    engine: AsyncEngine
    settings: Settings
    verifier: PasswordVerifier
    on_events: Callable[[], None] | None = None

    def ingestor(self, index: EnrolledIndex | None = None) -> Ingestor:
        return Ingestor(self.engine, self.settings, index, self.verifier, on_events=self.on_events)


class Coalesced:
    """A job run that never overlaps itself: called while a run is in progress, it asks
    that run to go once more when it ends and returns at once."""

    def __init__(self, run: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
        self._run = run
        self._stop = stop
        self._running = False
        self._again = False

    async def __call__(self) -> object:
        if self._running:
            self._again = True
            return None
        self._running = True
        try:
            while True:
                self._again = False
                result = await self._run()
                if not self._again or self._stop.is_set():
                    return result
        finally:
            self._running = False


@dataclass(frozen=True, slots=True)
class Watched:
    """A job to run whenever ``changes`` yields (a connector's source changed)."""

    job: Job
    changes: AsyncIterator[None]


def connector_jobs(
    wiring: IngestWiring,
    session: aiohttp.ClientSession,
    stop: asyncio.Event,
    counters: Counter[str],
) -> tuple[list[Job], list[Watched]]:
    """One job per ``EXPOSURE_CONNECTORS`` entry (settings are checked now, at start-up), and
    the watches of the connectors that can watch their source."""
    engine, settings = wiring.engine, wiring.settings
    jobs: list[Job] = []
    watched: list[Watched] = []
    for cls in configured_connectors(settings):
        name = cls.name

        async def run(name: str = name) -> object:
            if stop.is_set():
                return None
            # A fresh index per run (customers enrolled since are matched), loaded only
            # if the run brings something to match.
            summary = await run_connector(
                engine, settings, session, wiring.ingestor(), name, once=False, stop=stop
            )
            counters[f"connector_runs_{summary.outcome}"] += 1
            return summary

        schedule = cls.schedule(settings.environ)
        job = Job(
            name=f"connector:{name}",
            schedule=schedule.text,
            run=Coalesced(run, stop),
            setting=cls.schedule_variable(),
            # Interval connectors (the drop folder) start working at once.
            run_at_start=schedule.interval_seconds is not None,
            quiet=(schedule.interval_seconds or 3600) < 300,
        )
        jobs.append(job)
        changes = _changes(cls, settings, stop)
        if changes is not None:
            watched.append(Watched(job, changes))
    return jobs, watched


def _changes(
    cls: type[Connector[Any]], settings: Settings, stop: asyncio.Event
) -> AsyncIterator[None] | None:
    return cls.watch(cls.settings_type.from_environ(settings.environ), stop)


def chunks_job(
    wiring: IngestWiring, stop: asyncio.Event, counters: Counter[str], *, owner: str
) -> Job:
    """Every replica ingests claimable chunks of large dumps
    (:mod:`exposure.ingest.large_files`), one at a time until none is left. Deliberately not under
    the folder connector's advisory lock: the chunks are shared out row by row with ``FOR UPDATE
    SKIP LOCKED``, so all replicas help. ``owner``: the daemon's lease owner id (one chunk at a
    time per owner: this job is its only chunk worker)."""

    async def make_ingestor() -> Ingestor:
        # Loaded per job run, and only once a chunk was claimed: an idle tick is one query.
        return wiring.ingestor(await Ingestor.load_index(wiring.engine))

    async def run() -> object:
        done = await work(wiring.engine, make_ingestor, owner=owner, stop=stop)
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


def report_job(
    engine: AsyncEngine, settings: Settings, stop: asyncio.Event, counters: Counter[str]
) -> Job:
    """The weekly report. It runs once a week, so a lost database connection is retried here
    (until the daemon stops), not left to next week's run; the mail goes out once."""
    patient = Backoff(cap=60.0, patience=None)

    async def run() -> object:
        produced = await retrying(
            lambda: produce_weekly_report(engine, settings),
            what="weekly report",
            stop=stop,
            backoff=patient,
        )
        report = produced.report

        async def announce() -> None:
            async with engine.begin() as conn:
                now = utcnow()
                await outbox.enqueue_once(
                    conn, report_webhook(report.week, report.figures, now=now), now=now
                )

        await retrying(announce, what="weekly report webhook", stop=stop, backoff=patient)
        counters["reports"] += 1
        return str(report.week)

    return Job(
        name="weekly-report",
        schedule=settings.report_schedule,
        run=run,
        setting="EXPOSURE_REPORT_SCHEDULE",
    )
