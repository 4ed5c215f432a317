"""``exposure run``: one asyncio process that schedules connectors, ingests what they bring,
delivers webhooks, builds the weekly report and serves the HTTP API.

Every resource has one owner: the engine, the HTTP API's listening socket, the HTTP client
session, the password verifier and the ingest's worker threads are opened here, in order, on
one :class:`~contextlib.AsyncExitStack`, and closed in reverse.

SIGTERM or SIGINT sets the stop event: the scheduler stops starting jobs, running jobs finish
their current page (or are cancelled, rolling back their batch in flight), the delivery loop
finishes its in-flight sends, the API drains its requests, and the last log line carries the
process's counters. Whatever the process is blocked on, it exits within
``EXPOSURE_STOP_GRACE_SECONDS`` of the signal (:class:`StopWatchdog`); a second signal ends
it at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.app import create_app
from exposure.api.server import listening
from exposure.clock import utcnow
from exposure.delivery.sender import Deliverer
from exposure.errors import FatalError
from exposure.passwords.verifier import PasswordVerifier
from exposure.runtime.instance import daemon_owner_id
from exposure.runtime.jobs import IngestWiring, chunks_job, connector_jobs, report_job
from exposure.runtime.scheduler import Job, Schedule
from exposure.runtime.threads import worker_threads
from exposure.settings import Settings
from exposure.store import db
from exposure.store import large_files as chunk_queries
from exposure.store import outbox as outbox_queries

log = logging.getLogger("exposure.runtime.daemon")

# Of the stop grace period: running jobs get this share to finish their current page before
# they are cancelled, and in-flight API requests this share to finish; the rest is for the
# cancelled jobs' clean-up (giving their chunk back, recording the run) and closing down.
JOB_SHARE = 0.6
API_SHARE = 0.3
# A forced exit leaves this long before the grace period ends, for the last log line.
EXIT_MARGIN_SECONDS = 0.5
FORCED_EXIT_STATUS = 1


class StopWatchdog:
    """Ends the process once a stop was requested and ``grace`` seconds have passed, even if
    the event loop or a thread is stuck (a blocking read, a hung connection): the loop cannot
    be trusted to notice, so a thread keeps the time."""

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._requested = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stop-watchdog", daemon=True)
        self._thread.start()

    def arm(self) -> None:
        """A stop was requested: the clock starts (once). A second request ends it now."""
        if self._requested.is_set():
            self._exit("a second stop signal: exiting at once", FORCED_EXIT_STATUS)
        self._requested.set()

    def finished(self) -> None:
        """The daemon closed everything it owns; only the interpreter's own exit is left."""
        self._finished.set()

    def _watch(self) -> None:
        self._requested.wait()
        deadline = time.monotonic() + max(0.0, self._grace - EXIT_MARGIN_SECONDS)
        if self._finished.wait(max(0.0, deadline - time.monotonic())):
            # Closed cleanly; the interpreter now exits (ending this thread), unless a thread
            # it waits for is stuck (a read that never returns): then, at the deadline, leave
            # without it.
            time.sleep(max(0.0, deadline - time.monotonic()))
            self._exit("stopped; a worker thread is still blocked, leaving it behind", 0)
        self._exit(
            f"still busy {self._grace:g} s after the stop signal (EXPOSURE_STOP_GRACE_SECONDS): "
            "exiting now; unfinished work resumes from its last commit at the next start",
            FORCED_EXIT_STATUS,
        )

    @staticmethod
    def _exit(message: str, status: int) -> None:
        level = logging.WARNING if status == 0 else logging.ERROR
        log.log(level, message)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(status)


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
        grace = settings.stop_grace_seconds
        watchdog = StopWatchdog(grace)
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, _frame: object) -> None:
            # A plain handler, not loop.add_signal_handler: it runs even while the event loop
            # is blocked (the watchdog starts its clock), and wakes the loop when it is not.
            watchdog.arm()
            loop.call_soon_threadsafe(self.request_stop)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            async with AsyncExitStack() as stack:
                engine = await stack.enter_async_context(db.open_engine(settings.database_url))
                await self._prepare_schema(engine)
                owner = stack.enter_context(daemon_owner_id())
                await self._take_over(engine, owner)
                # Listening before anything starts: a taken port stops the daemon here, with
                # a message naming EXPOSURE_API_LISTEN, not after it said it was running.
                host, port = await stack.enter_async_context(
                    listening(
                        create_app(settings, engine),
                        settings.api_listen,
                        shutdown_timeout=grace * API_SHARE,
                    )
                )
                # One session for feeds and webhooks: no overall deadline (feed downloads can
                # be large); webhook sends set their own per-request timeout.
                session = await stack.enter_async_context(
                    aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
                    )
                )
                verifier = await stack.enter_async_context(PasswordVerifier())
                stack.enter_context(worker_threads())
                stop, counters = self._stop, self.counters
                deliverer = Deliverer(engine, settings, session, sender_id=owner)
                # Ingests wake the delivery loop as they commit events: a forced reset goes
                # out as soon as its transaction does, not at the next poll.
                ingest = IngestWiring(engine, settings, verifier, on_events=deliverer.wake)
                connector, watched = connector_jobs(ingest, session, stop, counters)
                jobs = [
                    *(self._tracked(job) for job in connector),
                    self._tracked(chunks_job(ingest, stop, counters, owner=owner)),
                    self._tracked(report_job(engine, settings, stop, counters)),
                ]
                schedule = Schedule(jobs, settings.timezone)
                watchers = [
                    asyncio.create_task(
                        self._follow(self._tracked(w.job), w.changes), name=w.job.name
                    )
                    for w in watched
                ]
                delivery = asyncio.create_task(deliverer.run(stop), name="webhook delivery")
                schedule.start()
                log.info(
                    "exposure daemon running",
                    extra={
                        "connectors": list(settings.connectors),
                        "api": f"{host}:{port}",
                        "lease_owner": owner,
                    },
                )
                try:
                    await self._wait(delivery)
                finally:
                    schedule.stop()
                    for watcher in watchers:
                        watcher.cancel()
                    await asyncio.gather(*watchers, return_exceptions=True)
                    await self._finish_jobs(grace * JOB_SHARE)
                    schedule.close()
                    await asyncio.gather(delivery, return_exceptions=True)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info(
            "exposure daemon stopped",
            extra={"uptime_s": round(time.monotonic() - started), **dict(self.counters)},
        )
        watchdog.finished()

    async def _prepare_schema(self, engine: AsyncEngine) -> None:
        pepper = self._settings.pepper.reveal()
        if self._settings.is_sqlite:
            # The embedded default is one process: migrating at start is safe and saves a step.
            await db.upgrade(engine, pepper)
        else:
            # Several replicas share PostgreSQL: migrations are an explicit one-shot step.
            await db.check_ready(engine, pepper)

    async def _take_over(self, engine: AsyncEngine, owner: str) -> None:
        """Give back what a previous daemon under this owner id (this host's slot: it died)
        left claimed, so its chunks and webhooks go on now, not when their leases end."""
        async with engine.begin() as conn:
            chunks = await chunk_queries.release_owned(conn, owner, utcnow())
            events = await outbox_queries.release_owned(conn, owner)
        if chunks or events:
            log.warning(
                "took over %d chunk(s) and %d webhook event(s) that the previous daemon on "
                "this host (%s) left claimed",
                chunks,
                events,
                owner,
            )

    async def _wait(self, delivery: asyncio.Task[None]) -> None:
        """Until a stop signal, or until the delivery loop dies (then stop too)."""
        stop = asyncio.create_task(self._stop.wait())
        done, _ = await asyncio.wait({stop, delivery}, return_when=asyncio.FIRST_COMPLETED)
        if delivery in done and delivery.exception() is not None:
            self._stop.set()
            raise FatalError(f"{delivery.get_name()} stopped: {delivery.exception()}")
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

    async def _finish_jobs(self, within: float) -> None:
        if not self._running:
            return
        log.info("waiting for %d running job(s)", len(self._running))
        _, pending = await asyncio.wait(self._running, timeout=within)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d job(s) still running after %.0fs", len(pending), within)
            await asyncio.wait(pending)  # their clean-up (bounded) runs before we close down


def _log_failure(run: asyncio.Future[object]) -> None:
    if not run.cancelled() and run.exception() is not None:
        log.error("a watched connector run failed: %s", type(run.exception()).__name__)


async def run_daemon(settings: Settings) -> None:
    await Daemon(settings).run()
