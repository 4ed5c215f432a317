"""``exposure run``: one asyncio process that schedules connectors, ingests what they bring,
delivers webhooks, builds the weekly report and serves the HTTP API.

Every resource has one owner: the engine, the HTTP client session, the password verifier and
the ingest's worker threads are opened here, in order, on one
:class:`~contextlib.AsyncExitStack`, and closed in reverse.
SIGTERM or SIGINT sets the stop event: the scheduler stops starting jobs, running jobs finish
their current page, the delivery loop finishes its in-flight sends, the API drains its
requests, and the last log line carries the process's counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.app import create_app
from exposure.api.server import serve
from exposure.delivery.sender import Deliverer
from exposure.errors import FatalError
from exposure.passwords.verifier import PasswordVerifier
from exposure.runtime.jobs import IngestWiring, chunks_job, connector_jobs, report_job
from exposure.runtime.scheduler import Job, Schedule
from exposure.runtime.threads import worker_threads
from exposure.settings import Settings
from exposure.store import db

log = logging.getLogger("exposure.runtime.daemon")

# Running jobs get this long after a stop signal to finish their current page.
JOB_GRACE_SECONDS = 60.0


class Daemon:
    """The long-running process. :meth:`run` returns when a stop signal was handled."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self.counters: Counter[str] = Counter()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stop requested: finishing current work")
            self._stop.set()

    async def run(self) -> None:
        settings = self._settings
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        async with AsyncExitStack() as stack:
            engine = await stack.enter_async_context(db.open_engine(settings.database_url))
            await self._prepare_schema(engine)
            # One session for feeds and webhooks: no overall deadline (feed downloads can be
            # large); webhook sends set their own per-request timeout.
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
                )
            )
            verifier = await stack.enter_async_context(PasswordVerifier())
            stack.enter_context(worker_threads())
            deliverer = Deliverer(engine, settings, session)
            # Ingests wake the delivery loop as they commit events: a forced reset goes out
            # as soon as its transaction does, not at the next poll.
            ingest = IngestWiring(engine, settings, verifier, on_events=deliverer.wake)
            connector, watched = connector_jobs(ingest, session, self._stop, self.counters)
            jobs = [
                *(self._tracked(job) for job in connector),
                self._tracked(chunks_job(ingest, self._stop, self.counters)),
                self._tracked(report_job(engine, settings, self.counters)),
            ]
            schedule = Schedule(jobs, settings.timezone)
            watchers = [
                asyncio.create_task(self._follow(self._tracked(w.job), w.changes), name=w.job.name)
                for w in watched
            ]
            api = asyncio.create_task(
                serve(create_app(settings, engine), settings.api_listen, self._stop)
            )
            delivery = asyncio.create_task(deliverer.run(self._stop))
            schedule.start()
            log.info(
                "exposure daemon running",
                extra={
                    "connectors": list(settings.connectors),
                    "api": "{}:{}".format(*settings.api_listen),
                },
            )
            try:
                await self._wait(api, delivery)
            finally:
                schedule.stop()
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
                await self._finish_jobs()
                await asyncio.gather(api, delivery, return_exceptions=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info(
            "exposure daemon stopped",
            extra={"uptime_s": round(time.monotonic() - started), **dict(self.counters)},
        )

    async def _prepare_schema(self, engine: AsyncEngine) -> None:
        pepper = self._settings.pepper.reveal()
        if self._settings.is_sqlite:
            # The embedded default is one process: migrating at start is safe and saves a step.
            await db.upgrade(engine, pepper)
        else:
            # Several replicas share PostgreSQL: migrations are an explicit one-shot step.
            await db.check_ready(engine, pepper)

    async def _wait(self, api: asyncio.Task[None], delivery: asyncio.Task[None]) -> None:
        """Until a stop signal, or until the API or the delivery loop dies (then stop too)."""
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop, api, delivery}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stop}:
            if task.exception() is not None:
                self._stop.set()
                raise FatalError(f"{task.get_name()} stopped: {task.exception()}")
        stop.cancel()

    async def _follow(self, job: Job, changes: AsyncIterator[None]) -> None:
        """Run ``job`` each time its connector's source changes (it coalesces runs itself)."""
        async for _ in changes:
            if self._stop.is_set():
                return
            # A task of its own, so the watch goes on noticing changes meanwhile; it ends as
            # a scheduled run would (the connector run records its own failure).
            run = asyncio.ensure_future(job.run())
            run.add_done_callback(_log_failure)

    def _tracked(self, job: Job) -> Job:
        """Run each run in a task of its own, registered so shutdown can wait for it: the
        scheduler cancels the runs it started when it stops, and a run must finish its
        current page instead."""

        async def run() -> object:
            if self._stop.is_set():
                return None
            task = asyncio.ensure_future(job.run())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            return await asyncio.shield(task)

        return dataclasses.replace(job, run=run)

    async def _finish_jobs(self) -> None:
        if not self._running:
            return
        log.info("waiting for %d running job(s)", len(self._running))
        _, pending = await asyncio.wait(self._running, timeout=JOB_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "cancelled %d job(s) still running after %.0fs", len(pending), JOB_GRACE_SECONDS
            )


def _log_failure(run: asyncio.Future[object]) -> None:
    if not run.cancelled() and run.exception() is not None:
        log.error("a watched connector run failed: %s", type(run.exception()).__name__)


async def run_daemon(settings: Settings) -> None:
    await Daemon(settings).run()
