"""Running a connector: one recorded run that stores each page together with its cursor.

:func:`run_connector` is what the daemon's scheduler and ``exposure connectors run`` call.
A run:

1. takes the connector's lock: on PostgreSQL a session-level ``pg_try_advisory_lock`` held on
   its own connection for the whole run, so a scheduled run happens on one replica only; on
   SQLite (one process by design) an in-process guard. A run that finds the lock taken does not
   run: with ``once=True`` (a manual run) it records a ``skipped`` row, so the operator sees
   why; a scheduled run (``once=False``) returns without a row, since every other replica
   would otherwise write one ``skipped`` row per tick;
2. records a ``connector_runs`` row (``running``), closing rows a dead process left running;
3. loads the cursor and drives the connector's :meth:`~connectors.base.Connector.pages`; each
   page goes to the :class:`~exposure.ingest.pipeline.Ingestor` (records, files) or to the store
   (HIBP e-mail ranges, Pwned Passwords counts) with the new cursor written in the SAME
   transaction as the page's last batch, so a crash at any point resumes with the cursor
   matching the data;
4. on a retriable error, backs off (exponential, full jitter, never sooner than a
   ``Retry-After``) and calls ``pages`` again from the last stored cursor, a few times; then
   the run is ``failed`` (``retriable``) and the next scheduled run tries again;
5. ends the row as ``success`` or ``failed`` with the error class and a message that holds no
   secret, no identifier and no URL query; bumps ``exposure_connector_runs``.

A :class:`~connectors.base.LargeFilePage` is registered as byte-range chunks for every
replica's ``chunks`` job (:mod:`exposure.ingest.large_files`); a manual run (``once``) ingests
them itself.

HIBP e-mail range matches carry no plaintext login for the matcher; they are written by
:func:`exposure.ingest.email_range_matches.store_email_range`, in the same one transaction
with the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.base import (
    Connector,
    Cursor,
    EmailRangePage,
    FilesPage,
    LargeFilePage,
    Page,
    PasswordRangePage,
    RecordsPage,
    Stored,
)
from connectors.registry import ConnectorClass, Registry, load_registry
from exposure.clock import full_jitter, utcnow
from exposure.domain.broker_sites import BrokerDomains
from exposure.errors import ExposureError, RetriableError, SkippableError
from exposure.ingest import large_files
from exposure.ingest.email_range_matches import store_email_range
from exposure.ingest.pipeline import Finalizer, Ingestor
from exposure.ingest.results import (
    ConnectorOutcome,
    ConnectorRunResult,
    Ingested,
    RunSkipped,
)
from exposure.ingest.run_interruptions import in_our_terms, unless_lost
from exposure.metrics import CONNECTOR_RUNS
from exposure.settings import Settings
from exposure.store import connectors as q
from exposure.store import corpus
from exposure.store.reconnect import Backoff, DatabaseUnavailable, pause, retrying

log = logging.getLogger("exposure.connectors")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Retries of retriable errors within one run. ``attempts`` failures in a row without a
    stored page end the run; a ``Retry-After`` longer than ``max_retry_after`` ends it at once."""

    attempts: int = 4
    base_delay: float = 2.0
    max_delay: float = 120.0
    max_retry_after: float = 900.0

    def delay(self, failures: int, retry_after: float | None) -> float | None:
        backoff = full_jitter(failures, base=self.base_delay, cap=self.max_delay)
        if retry_after is None:
            return backoff
        if retry_after > self.max_retry_after:
            return None
        return retry_after + backoff / 4


DEFAULT_RETRY = RetryPolicy()


class StoreInputs:
    """The read-only :class:`~connectors.base.ConnectorInputs` a run hands its connector."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @property
    def broker_domains(self) -> BrokerDomains:
        return self._settings.broker_domains

    def keyed_digest(self) -> hmac.HMAC:
        return hmac.new(self._settings.pepper.reveal(), b"connector-cursor\x00", hashlib.sha256)

    async def email_range_prefixes(self, *, after: str, limit: int) -> Sequence[str]:
        async with self._engine.connect() as conn:
            return await q.email_range_prefixes(conn, after=after, limit=limit)

    async def password_range_prefixes(self, *, after: str, limit: int) -> Sequence[str]:
        async with self._engine.connect() as conn:
            return await q.password_range_prefixes(conn, after=after, limit=limit)


async def run_connector(
    engine: AsyncEngine,
    settings: Settings,
    session: aiohttp.ClientSession,
    ingestor: Ingestor,
    name: str,
    *,
    once: bool = True,
    stop: asyncio.Event | None = None,
    registry: Registry | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> ConnectorOutcome:
    """Run connector ``name`` now and return what it came to.

    ``once``: a manual run (records a ``skipped`` row when another run holds the lock); the
    scheduler passes ``False``. ``stop``: once set, the run ends after the page being stored
    (``success``, ``"stopped": true``; the next run goes on from its cursor) and backs off no
    more. Our own errors end the run as ``failed`` and are reported in the summary, not
    raised; an unknown ``name`` raises :class:`~connectors.registry.UnknownConnector`;
    anything else is recorded as ``failed`` and re-raised (cancellation too).
    """
    cls = (registry or load_registry()).get(name)
    async with q.connector_lock(engine, name) as lock:
        if not lock.acquired:
            return await _skipped(engine, name, record=once)
        run = _Run(engine, settings, session, ingestor, cls, retry, stop, work_chunks=once)
        return await run.execute(lock.lost)


async def connector_status(
    engine: AsyncEngine, names: Sequence[str] = ()
) -> list[q.ConnectorStatus]:
    """Per connector (every one that ever ran, plus ``names``): last success, last failure
    with its error, run counts by outcome, whether a run is in progress."""
    async with engine.connect() as conn:
        return await q.status(conn, names)


def configured_connectors(
    settings: Settings, registry: Registry | None = None
) -> list[ConnectorClass]:
    """The classes of ``EXPOSURE_CONNECTORS``, each with valid settings and schedule (for a
    daemon to fail at start-up rather than at the first run)."""
    found = registry or load_registry()
    classes = [found.get(name) for name in settings.connectors]
    for cls in classes:
        cls.settings_type.from_environ(settings.environ)
        cls.schedule(settings.environ)
    return classes


async def _skipped(engine: AsyncEngine, name: str, *, record: bool) -> RunSkipped:
    reason = "another run of this connector holds its lock (another replica or process)"
    now = utcnow()
    run_id = None
    if record:
        async with engine.begin() as conn:
            run_id = await q.record_skipped(conn, name, reason, now=now)
    CONNECTOR_RUNS.labels(connector=name, outcome="skipped").inc()
    log.info("connector %s: skipped, %s", name, reason)
    return RunSkipped(connector=name, run_id=run_id, reason=reason)


class _Run:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        session: aiohttp.ClientSession,
        ingestor: Ingestor,
        cls: ConnectorClass,
        retry: RetryPolicy,
        stop: asyncio.Event | None,
        *,
        work_chunks: bool = False,
    ) -> None:
        self.engine, self.settings, self.session = engine, settings, session
        self.work_chunks = work_chunks
        self.ingestor, self.cls, self.retry, self.name = ingestor, cls, retry, cls.name
        self.stop = stop
        self.stopped = False
        self.run_id = 0
        self.cursor: Cursor = None
        self.pages = self.records = self.matched = self.retries = 0
        self.events = self.sightings = 0
        self.new_exposures: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.started = utcnow()

    async def execute(self, lock_lost: asyncio.Event) -> ConnectorRunResult:
        async def begin() -> None:
            async with self.engine.begin() as conn:
                if await q.close_interrupted(conn, self.name, now=self.started):
                    log.warning(
                        "connector %s: closed a run left running by a process that died or "
                        "lost its database connection",
                        self.name,
                    )
                self.run_id = await q.start_run(conn, self.name, now=self.started)
                self.cursor = await q.load_cursor(conn, self.name)

        await retrying(begin, what=f"connector {self.name}: starting the run", stop=self.stop)
        try:
            await unless_lost(self._drive(), lock_lost)
        except ExposureError as error:
            kind = _error_class(error)
            log.error("connector %s: run failed (%s): %s", self.name, kind, error)
            return await self._finish("failed", kind, str(error))
        except asyncio.CancelledError:
            # Stopping: record it if the database answers at once, else the next run will.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self._finish("failed", "retriable", "cancelled: the process stopped the run"),
                    CANCELLED_FINISH_SECONDS,
                )
            raise
        except Exception as error:
            # Not one of ours: its message may quote data, so only its type is recorded.
            await self._finish("failed", "fatal", f"unexpected {type(error).__name__}; see the log")
            raise
        if self.skipped:
            listed = ", ".join(f"{reason}={n}" for reason, n in sorted(self.skipped.items()))
            count = sum(self.skipped.values())
            return await self._finish("success", "skippable", f"{count} item(s) skipped: {listed}")
        return await self._finish("success", None, None)

    async def _drive(self) -> None:
        failures = 0
        while True:
            stored_before = self.pages
            try:
                await self._pass()
                return
            except Exception as raised:
                # A lost database connection, or a connector's group of errors, in our terms.
                error = in_our_terms(raised)
                if error is None:
                    raise
                delay = None
                if isinstance(error, RetriableError):
                    failures = 1 if self.pages > stored_before else failures + 1
                    delay = self.retry.delay(failures, getattr(error, "retry_after", None))
                if delay is None or failures >= self.retry.attempts or self._stopping():
                    if error is raised:
                        raise
                    raise error from raised
                self.retries += 1
                log.warning(
                    "connector %s: %s (attempt %d of %d); resuming from the last stored page "
                    "in %.1fs",
                    self.name,
                    error,
                    failures,
                    self.retry.attempts,
                    delay,
                )
                await pause(self.stop, delay)

    async def _pass(self) -> None:
        config = self.cls.settings_type.from_environ(self.settings.environ)
        connector: Connector[Any] = self.cls(
            config, session=self.session, inputs=StoreInputs(self.engine, self.settings)
        )
        async with aclosing(connector.pages(self.cursor)) as pages:
            outcome: Stored | None = None
            while True:
                try:
                    page = await self._next_page(pages, outcome)
                except StopAsyncIteration:
                    return
                if page is None:  # stopped while the connector was getting its next page
                    self.stopped = True
                    return
                outcome, ingested = await self._store(page)
                self.cursor = page.cursor
                self.pages += 1
                self.records += outcome.records
                self.matched += outcome.matched
                self.skipped.update(page.skipped)
                for result in ingested:
                    self.new_exposures.update(result.new_exposures)
                    self.events += result.events
                    self.sightings += result.sightings
                await self._record_progress()
                if self._stopping():
                    self.stopped = True
                    log.info("connector %s: stopping after %d pages", self.name, self.pages)
                    return

    async def _next_page(
        self, pages: AsyncGenerator[Page, Stored | None], outcome: Stored | None
    ) -> Page | None:
        """The connector's next page, or None when ``stop`` comes first: nothing of that page
        is stored yet, so the wait for it (a settle time, a download) ends at once."""
        if self.stop is None:
            return await pages.asend(outcome)
        fetching = asyncio.ensure_future(pages.asend(outcome))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if fetching.done():
            return fetching.result()
        fetching.cancel()
        await asyncio.gather(fetching, return_exceptions=True)
        return None

    async def _record_progress(self) -> None:
        async def record() -> None:
            async with self.engine.begin() as conn:
                await q.update_run(
                    conn, self.run_id, pages=self.pages, records=self.records, matched=self.matched
                )

        # The page is stored already: only the run's counters wait for the connection.
        await retrying(record, what=f"connector {self.name}: recording progress")

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def _store(self, page: Page) -> tuple[Stored, Sequence[Ingested]]:
        """Store one page with its cursor; what the connector is told, and what the run sums."""
        if isinstance(page, RecordsPage) and page.records:
            result = await self.ingestor.ingest_records(
                page.records, label=page.label, source=self.name, finalize=self._saver(page)
            )
            return Stored(len(page.records), result.matched_records, (result,)), (result,)
        if isinstance(page, FilesPage) and page.files:
            results: list[Ingested] = []
            for number, path in enumerate(page.files, 1):
                finalize = self._saver(page) if number == len(page.files) else None
                chunked = None
                if isinstance(page, LargeFilePage):
                    chunked = await large_files.take_large_file(
                        self.engine,
                        self.settings,
                        self.ingestor,
                        path,
                        chunk_bytes=page.chunk_bytes,
                        done_folder=page.done_folder,
                        source=self.name,
                        work_now=self.work_chunks,
                        stop=self.stop,
                        finalize=finalize,
                    )
                results.append(
                    chunked
                    or await self.ingestor.ingest(
                        path, source=self.name, format_override=page.format, finalize=finalize
                    )
                )
            stored = Stored(
                sum(r.records for r in results),
                sum(r.matched_records for r in results),
                tuple(results),
            )
            return stored, results
        if isinstance(page, EmailRangePage) and page.hits:
            stored, matched = await store_email_range(self.engine, self.settings, self.name, page)
            return stored, () if matched is None else (matched,)
        async with self.engine.begin() as conn:
            written = 0
            if isinstance(page, PasswordRangePage):
                written = await corpus.merge_corpus_max(conn, page.counts)
            await q.save_cursor(conn, self.name, page.cursor, now=utcnow())
        return Stored(records=written), ()

    def _saver(self, page: Page) -> Finalizer:
        async def finalize(conn: AsyncConnection) -> None:
            await q.save_cursor(conn, self.name, page.cursor, now=utcnow())

        return finalize

    async def _finish(
        self, outcome: str, error_class: str | None, error: str | None
    ) -> ConnectorRunResult:
        now = utcnow()

        async def record() -> None:
            async with self.engine.begin() as conn:
                await q.update_run(
                    conn,
                    self.run_id,
                    pages=self.pages,
                    records=self.records,
                    matched=self.matched,
                    outcome=outcome,
                    error_class=error_class,
                    error=error,
                    now=now,
                )

        with contextlib.suppress(DatabaseUnavailable):
            # Still unreachable after a while: the row stays "running" and the next run
            # closes it as interrupted; the summary below is what the operator sees now.
            await retrying(
                record, what=f"connector {self.name}: recording the outcome", backoff=_FINISHING
            )
        CONNECTOR_RUNS.labels(connector=self.name, outcome=outcome).inc()
        log.info(
            "connector %s: %s (%d pages, %d records, %d matched)",
            self.name,
            outcome,
            self.pages,
            self.records,
            self.matched,
        )
        return ConnectorRunResult(
            connector=self.name,
            run_id=self.run_id,
            outcome=outcome,
            started_at=self.started,
            finished_at=now,
            pages=self.pages,
            records=self.records,
            matched=self.matched,
            new_exposures=dict(self.new_exposures),
            events=self.events,
            sightings=self.sightings,
            skipped=dict(self.skipped),
            retries=self.retries,
            stopped=self.stopped,
            error_class=error_class,
            error=error,
        )


# Recording a run's outcome waits this long for the database at most; a cancelled run (the
# process is stopping) this long.
_FINISHING = Backoff(patience=30.0)
CANCELLED_FINISH_SECONDS = 2.0


def _error_class(error: ExposureError) -> str:
    """``fatal`` unless the error says otherwise (FatalError and unclassified errors alike)."""
    if isinstance(error, RetriableError):
        return "retriable"
    if isinstance(error, SkippableError):
        # One bad item escaped the connector: the generator is gone, so the run cannot go on.
        return "skippable"
    return "fatal"
