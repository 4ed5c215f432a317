"""The leaked-password corpus: staged by ingestion and folded into ``leaked_passwords`` later;
merged with Pwned Passwords' counts by that connector.

An ingest batch stages its passwords' SHA-1 digests in ``corpus_pending`` rows of at most
:data:`STAGE_ROW_DIGESTS`, in the batch's transaction: one insert, however many lines.
:func:`compact` moves staged rows into ``leaked_passwords`` (counts summed), taking them with
``DELETE ... RETURNING`` so that two compactors never fold the same row, and writing the
counts in that same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import cast

import numpy as np
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.store.dialect import is_postgres, placeholders
from exposure.store.models import CorpusPending
from exposure.store.types import utcnow

log = logging.getLogger("exposure.corpus")

pending = cast(Table, CorpusPending.__table__)

DIGEST_BYTES = 20
# The count column is a 32-bit integer: sums and HIBP's counts are capped, never overflow it.
MAX_COUNT = 2**31 - 1
# A batch's digests are staged in rows of at most this many (2 MB), and a fold takes a few
# rows per transaction: at about 300,000 digests a second on SQLite, the write lock a fold
# holds stays near a second however large the ingest's batches.
STAGE_ROW_DIGESTS = 100_000
ROWS_PER_FOLD = 3
_DIGEST = np.dtype(f"V{DIGEST_BYTES}")


async def stage(conn: AsyncConnection, digests: bytes) -> None:
    """Stage concatenated 20-byte SHA-1 digests (repeats count) for the corpus."""
    if len(digests) % DIGEST_BYTES:
        raise ValueError("digests must be whole 20-byte SHA-1 values")
    if digests:
        now, step = utcnow(), STAGE_ROW_DIGESTS * DIGEST_BYTES
        rows = [
            {"digests": digests[start : start + step], "staged_at": now}
            for start in range(0, len(digests), step)
        ]
        await conn.execute(insert(pending), rows)


async def pending_digests(conn: AsyncConnection) -> int:
    """How many staged digests wait to be folded (a gauge for operators)."""
    total = await conn.execute(select(func.coalesce(func.sum(func.length(pending.c.digests)), 0)))
    return int(total.scalar_one()) // DIGEST_BYTES


async def compact(engine: AsyncEngine, *, stop: asyncio.Event | None = None) -> int:
    """Fold every staged row into ``leaked_passwords``; return the digests folded. With
    ``stop``, return early once it is set (between two folds, each its own transaction)."""
    folded = 0
    started = time.perf_counter()
    while stop is None or not stop.is_set():
        async with engine.begin() as conn:
            if (await conn.execute(select(pending.c.id).limit(1))).first() is None:
                break
            oldest = select(pending.c.id).order_by(pending.c.id).limit(ROWS_PER_FOLD)
            taken = await conn.execute(
                delete(pending).where(pending.c.id.in_(oldest)).returning(pending.c.digests)
            )
            digests = b"".join(bytes(row[0]) for row in taken)
            if not digests:
                continue  # another compactor took them first
            values, counts = np.unique(np.frombuffer(digests, dtype=_DIGEST), return_counts=True)
            await add_to_corpus(
                conn, zip((v.tobytes() for v in values), counts.tolist(), strict=True)
            )
            folded += len(digests) // DIGEST_BYTES
    if folded:
        log.info(
            "corpus compacted",
            extra={"digests": folded, "seconds": round(time.perf_counter() - started, 2)},
        )
    return folded


async def add_to_corpus(conn: AsyncConnection, counts: Iterable[tuple[bytes, int]]) -> None:
    """Add leaked-password SHA-1 digests to the corpus, summing counts (give keys in sorted
    order, so the inserts walk the B-tree instead of jumping around it)."""
    # BIGINT: a sum past the cap must not overflow before it is capped.
    await _upsert(conn, counts, "CAST(leaked_passwords.count AS BIGINT) + excluded.count")


async def merge_corpus_max(conn: AsyncConnection, counts: Iterable[tuple[bytes, int]]) -> int:
    """Merge Pwned Passwords counts: each hash keeps the larger of our count and HIBP's;
    returns the rows written.

    The corpus has no per-source column, so max() is the merge that never double counts
    (a password in both our dumps and HIBP's corpus is very likely the same sightings).
    """
    larger = "GREATEST" if is_postgres(conn) else "MAX"
    return await _upsert(conn, counts, f"{larger}(leaked_passwords.count, excluded.count)")


async def _upsert(conn: AsyncConnection, counts: Iterable[tuple[bytes, int]], merged: str) -> int:
    """Insert counts, or merge them into existing rows with the SQL expression ``merged``
    (capped at :data:`MAX_COUNT`). The bulk path of every fold, straight to the driver."""
    rows = [(sha1, min(count, MAX_COUNT)) for sha1, count in counts if count > 0]
    if rows:
        smaller = "LEAST" if is_postgres(conn) else "MIN"
        await conn.exec_driver_sql(
            # Fixed SQL text: only the placeholders and the function names are generated.
            f"INSERT INTO leaked_passwords (sha1, count) VALUES ({placeholders(conn, 2)}) "  # noqa: S608
            f"ON CONFLICT (sha1) DO UPDATE SET count = {smaller}({merged}, {MAX_COUNT})",
            rows,
        )
    return len(rows)
