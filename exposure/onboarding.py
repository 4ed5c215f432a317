"""Enrolment and offboarding: the service behind ``exposure enroll``, ``exposure customers``
and ``POST /v1/customers``."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.enrolment import Enroller, EnrolmentRow, RowRejected, csv_records
from exposure.store import customers as customer_queries

BATCH_ROWS = 20_000
MAX_LISTED_REJECTIONS = 1_000
# Larger files are normalised and fingerprinted on worker processes, leaving the main process
# with CSV reading and database writes (a million customers in well under a minute).
PARALLEL_FROM_BYTES = 4 << 20

Item = EnrolmentRow | RowRejected


@dataclass(slots=True)
class EnrolmentSummary:
    rows: int = 0
    customer_ids: set[str] = field(default_factory=set, repr=False)
    identifiers: Counter[str] = field(default_factory=Counter)
    rejected: list[RowRejected] = field(default_factory=list)
    rejected_total: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, item: Item) -> None:
        self.rows += 1
        if isinstance(item, RowRejected):
            self.rejected_total += 1
            self.rejected_by_reason[item.reason] += 1
            if len(self.rejected) < MAX_LISTED_REJECTIONS:
                self.rejected.append(item)
            return
        self.customer_ids.add(item.customer_id)
        for ident in item.identifiers:
            if ident.strength == "strict":
                self.identifiers[ident.kind.value] += 1

    def as_json(self, totals: customer_queries.EnrolmentTotals) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "customers": len(self.customer_ids),
            "identifiers": dict(sorted(self.identifiers.items())),
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(self.rejected_by_reason.most_common()),
            "rejected_rows": [{"line": r.line_no, "reason": r.reason} for r in self.rejected],
            "rejected_rows_truncated": self.rejected_total > len(self.rejected),
            "database": {"customers": totals.customers, "identifiers": totals.identifiers_by_kind},
        }


async def enrol(engine: AsyncEngine, items: Iterable[Item]) -> dict[str, Any]:
    """Upsert already-built rows (small inputs: the API, tests) and summarise."""

    async def chunks() -> AsyncIterator[list[Item]]:
        iterator = iter(items)
        while chunk := list(islice(iterator, BATCH_ROWS)):
            yield chunk

    return await _enrol_chunks(engine, chunks())


async def enrol_csv(
    engine: AsyncEngine, enroller: Enroller, stream: TextIO, *, size_hint: int = 0
) -> dict[str, Any]:
    """Enrol a customer CSV, fingerprinting on every core when the file is large."""
    records = csv_records(stream)
    workers = os.cpu_count() or 1
    if size_hint < PARALLEL_FROM_BYTES or workers < 2:
        return await enrol(engine, _build_each(enroller, records))
    loop = asyncio.get_running_loop()
    # spawn, not fork: the event loop and the database driver's threads must not be forked.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        in_flight: deque[asyncio.Future[list[Item]]] = deque()

        async def chunks() -> AsyncIterator[list[Item]]:
            while chunk := list(islice(records, BATCH_ROWS)):
                in_flight.append(loop.run_in_executor(pool, enroller.build_many, chunk))
                # Two chunks per worker in flight keep every worker busy while we write.
                if len(in_flight) >= 2 * workers:
                    yield await in_flight.popleft()
            while in_flight:
                yield await in_flight.popleft()

        return await _enrol_chunks(engine, chunks())


def _build_each(enroller: Enroller, records: Iterable[Any]) -> Iterator[Item]:
    for item in records:
        yield item if isinstance(item, RowRejected) else enroller.build(*item)


async def _enrol_chunks(engine: AsyncEngine, chunks: AsyncIterator[list[Item]]) -> dict[str, Any]:
    """Write each chunk's accepted rows in one transaction.

    A crash part-way leaves whole chunks committed; enrolling the file again is idempotent,
    so re-running is always the recovery.
    """
    summary = EnrolmentSummary()
    async for chunk in chunks:
        rows: list[EnrolmentRow] = []
        for item in chunk:
            summary.add(item)
            if isinstance(item, EnrolmentRow):
                rows.append(item)
        if rows:
            async with engine.begin() as conn:
                await customer_queries.upsert_customers(conn, rows)
    async with engine.connect() as conn:
        totals = await customer_queries.totals(conn)
    return summary.as_json(totals)


async def offboard(engine: AsyncEngine, customer_id: str) -> bool:
    async with engine.begin() as conn:
        return await customer_queries.delete_customer(conn, customer_id)
