"""The leaked-password corpus: staged by ingestion, folded into ``leaked_passwords`` later.

An ingest batch stages its passwords' SHA-1 digests as one ``corpus_pending`` row, in the
batch's transaction: one insert, however many lines. :func:`compact` moves staged rows into
``leaked_passwords`` (counts summed), taking them with ``DELETE ... RETURNING`` so that two
compactors never fold the same row, and writing the counts in that same transaction.
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

from exposure.store.dialect import placeholders
from exposure.store.models import CorpusPending
from exposure.store.types import utcnow

log = logging.getLogger("exposure.corpus")

pending = cast(Table, CorpusPending.__table__)

DIGEST_BYTES = 20
# Staged rows folded per transaction: an ingest batch stages up to 50,000 digests (1 MB), so
# this bounds a fold to a few hundred thousand corpus rows and the write lock to about a second.
ROWS_PER_FOLD = 4
_DIGEST = np.dtype(f"V{DIGEST_BYTES}")


async def stage(conn: AsyncConnection, digests: bytes) -> None:
    """Stage concatenated 20-byte SHA-1 digests (repeats count) for the corpus."""
    if len(digests) % DIGEST_BYTES:
        raise ValueError("digests must be whole 20-byte SHA-1 values")
    if digests:
        await conn.execute(insert(pending).values(digests=digests, staged_at=utcnow()))


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
    """Add leaked-password SHA-1 digests to the corpus, summing counts (keys in sorted order,
    so the inserts walk the B-tree instead of jumping around it).

    The bulk path of every fold (one row per distinct password), so it goes straight to the
    driver.
    """
    rows = list(counts)
    if rows:
        await conn.exec_driver_sql(
            f"INSERT INTO leaked_passwords (sha1, count) VALUES ({placeholders(conn, 2)}) "  # noqa: S608
            "ON CONFLICT (sha1) DO UPDATE SET count = leaked_passwords.count + excluded.count",
            rows,
        )
