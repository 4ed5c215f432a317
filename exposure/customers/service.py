"""Enrolment and offboarding: the service behind ``exposure enroll``, ``exposure customers``
and ``POST /v1/customers``."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure import JsonObject
from exposure.customers.enrolment import (
    Enroller,
    EnrolmentRow,
    HashRefused,
    PreparedBatch,
    RowRejected,
    csv_records,
    prepare,
)
from exposure.domain.fingerprints import customer_reference
from exposure.passwords.schemes import Refusal
from exposure.store import audit as audit_log
from exposure.store import customers as customer_queries
from exposure.store.audit import Actor, AuditAction

BATCH_ROWS = 20_000
# Batches share a transaction up to this many rows or seconds. Fingerprint-keyed indexes are
# written at random places, so every commit rewrites (in SQLite's WAL, then its checkpoint)
# most of their pages: fewer, larger commits write each page fewer times. The time bound keeps
# the write lock short enough for the monitor's own writers (busy_timeout 30 s).
COMMIT_ROWS = 200_000
COMMIT_SECONDS = 5.0
MAX_LISTED_REJECTIONS = 1_000
# Larger files are normalised and fingerprinted on worker processes, leaving the main process
# with CSV reading and database writes (a million customers in well under a minute).
PARALLEL_FROM_BYTES = 4 << 20
# An enrolment of this many rows or more refreshes the planner's statistics at its end (0.35 s
# at a million customers on PostgreSQL): the next ingest must not wait for autovacuum to plan
# its look-ups well. Smaller ones, such as the API's, leave it to autovacuum.
STATISTICS_FROM_ROWS = 10_000

Item = EnrolmentRow | RowRejected


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrolmentResult:
    """What one enrolment did: rows read, customers and identifiers by kind, rejected rows
    (the first :data:`MAX_LISTED_REJECTIONS` listed, by line and reason, never a value), and
    the database's totals afterwards."""

    rows: int
    customers: int
    identifiers: Mapping[str, int]
    rejected: int
    rejected_by_reason: Mapping[str, int]
    rejected_rows: tuple[RowRejected, ...]
    # Rows enrolled without their password hash (monitored as `unknown`), by reason.
    hashes_refused: Mapping[str, int]
    hashes_refused_rows: tuple[HashRefused, ...]
    database: customer_queries.EnrolmentTotals

    def as_json(self) -> JsonObject:
        """The command's summary (the API numbers rejected rows by index instead)."""
        return {
            "rows": self.rows,
            "customers": self.customers,
            "identifiers": dict(self.identifiers),
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "rejected_rows": [{"line": r.line_no, "reason": r.reason} for r in self.rejected_rows],
            "rejected_rows_truncated": self.rejected > len(self.rejected_rows),
            # With what each reason means and what to do instead.
            "hashes_refused": dict(self.hashes_refused),
            "hashes_refused_rows": [
                {"line": r.line_no, "reason": r.reason} for r in self.hashes_refused_rows
            ],
            "hash_refusal_help": {
                reason: Refusal(reason).message for reason in sorted(self.hashes_refused)
            },
            "database": {
                "customers": self.database.customers,
                "identifiers": self.database.identifiers_by_kind,
            },
        }


@dataclass(slots=True)
class _Tally:
    """Counts gathered batch by batch."""

    rows: int = 0
    customer_ids: set[str] = field(default_factory=set, repr=False)
    identifiers: Counter[str] = field(default_factory=Counter)
    rejected: list[RowRejected] = field(default_factory=list)
    rejected_total: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    hashes_refused: Counter[str] = field(default_factory=Counter)
    hashes_refused_rows: list[HashRefused] = field(default_factory=list)

    def add(self, batch: PreparedBatch) -> None:
        self.rows += batch.rows
        self.customer_ids.update(batch.customers)
        self.identifiers.update(batch.strict_by_kind)
        for item in batch.rejected:
            self.rejected_total += 1
            self.rejected_by_reason[item.reason] += 1
            if len(self.rejected) < MAX_LISTED_REJECTIONS:
                self.rejected.append(item)
        for refused in batch.hashes_refused:
            self.hashes_refused[refused.reason] += 1
            if len(self.hashes_refused_rows) < MAX_LISTED_REJECTIONS:
                self.hashes_refused_rows.append(refused)

    def result(self, totals: customer_queries.EnrolmentTotals) -> EnrolmentResult:
        return EnrolmentResult(
            rows=self.rows,
            customers=len(self.customer_ids),
            identifiers=dict(sorted(self.identifiers.items())),
            rejected=self.rejected_total,
            rejected_by_reason=dict(self.rejected_by_reason.most_common()),
            rejected_rows=tuple(self.rejected),
            hashes_refused=dict(self.hashes_refused.most_common()),
            hashes_refused_rows=tuple(self.hashes_refused_rows),
            database=totals,
        )


async def enrol(
    engine: AsyncEngine, items: Iterable[Item], *, actor: Actor, source: str = ""
) -> EnrolmentResult:
    """Upsert already-built rows (small inputs: the API, tests) and summarise. ``source``
    names the input in the audit entry (a file name; empty for an API request)."""

    async def batches() -> AsyncIterator[PreparedBatch]:
        iterator = iter(items)
        while chunk := list(islice(iterator, BATCH_ROWS)):
            yield prepare(chunk)

    return await _enrol_batches(engine, batches(), actor=actor, source=source)


async def enrol_csv(
    engine: AsyncEngine,
    enroller: Enroller,
    stream: TextIO,
    *,
    actor: Actor,
    source: str = "",
    size_hint: int = 0,
) -> EnrolmentResult:
    """Enrol a customer CSV, fingerprinting on worker processes when the file is large."""
    records = csv_records(stream)
    # One core stays with this process: it reads the CSV and writes to the database, about as
    # much work as fingerprinting.
    workers = max(1, (os.cpu_count() or 1) - 1)
    if size_hint < PARALLEL_FROM_BYTES:

        async def inline() -> AsyncIterator[PreparedBatch]:
            while chunk := list(islice(records, BATCH_ROWS)):
                yield enroller.prepare_many(chunk)

        return await _enrol_batches(engine, inline(), actor=actor, source=source)
    loop = asyncio.get_running_loop()
    # spawn, not fork: the event loop and the database driver's threads must not be forked.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        in_flight: deque[asyncio.Future[PreparedBatch]] = deque()

        async def pooled() -> AsyncIterator[PreparedBatch]:
            while chunk := list(islice(records, BATCH_ROWS)):
                in_flight.append(loop.run_in_executor(pool, enroller.prepare_many, chunk))
                # Two chunks per worker in flight keep every worker busy while we write.
                if len(in_flight) >= 2 * workers:
                    yield await in_flight.popleft()
            while in_flight:
                yield await in_flight.popleft()

        return await _enrol_batches(engine, pooled(), actor=actor, source=source)


async def _enrol_batches(
    engine: AsyncEngine, batches: AsyncIterator[PreparedBatch], *, actor: Actor, source: str
) -> EnrolmentResult:
    """Write the batches, a few to a transaction (:data:`COMMIT_ROWS`, :data:`COMMIT_SECONDS`),
    and summarise; the audit entry (counts only, no customer id) is written with the totals at
    the end.

    A crash part-way leaves whole batches committed and no audit entry; enrolling the file
    again is idempotent, so re-running is always the recovery, and it records the entry.
    """
    tally = _Tally()
    async with contextlib.AsyncExitStack() as stack:
        conn: AsyncConnection | None = None
        written = 0
        started = 0.0
        async for batch in batches:
            tally.add(batch)
            if not batch.customers:
                continue
            if conn is None:
                conn = await stack.enter_async_context(engine.begin())
                written, started = 0, time.monotonic()
            await customer_queries.upsert_customers(conn, batch)
            written += batch.rows
            if written >= COMMIT_ROWS or time.monotonic() - started >= COMMIT_SECONDS:
                await stack.aclose()  # commits
                conn = None
    async with engine.begin() as conn:
        if tally.rows >= STATISTICS_FROM_ROWS:
            await customer_queries.refresh_statistics(conn)
        totals = await customer_queries.totals(conn)
        await audit_log.record(
            conn,
            actor,
            AuditAction.CUSTOMERS_ENROLLED,
            target=source,
            detail={
                "rows": tally.rows,
                "customers": len(tally.customer_ids),
                "rejected": tally.rejected_total,
            },
        )
    return tally.result(totals)


async def offboard(engine: AsyncEngine, customer_id: str, *, actor: Actor, pepper: bytes) -> bool:
    """Remove the customer and every fingerprint; the audit entry names the customer only by
    :func:`~exposure.domain.fingerprints.customer_reference`. False when not enrolled."""
    async with engine.begin() as conn:
        deleted = await customer_queries.delete_customer(conn, customer_id)
        if deleted:
            await audit_log.record(
                conn,
                actor,
                AuditAction.CUSTOMER_DELETED,
                target=customer_reference(pepper, customer_id),
            )
        return deleted
