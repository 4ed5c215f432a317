"""The leaked-password corpus: staged by ingestion and folded into ``leaked_passwords`` later;
merged with Pwned Passwords' counts by that connector.

An ingest batch stages its passwords' SHA-1 digests in ``corpus_pending`` rows of at most
:data:`STAGE_ROW_DIGESTS`, in the batch's transaction: one insert, however many lines. Beside
a SQLite file the digests themselves wait in spool files the rows name (:class:`Spool`).
:func:`compact` folds staged rows into sorted corpus segments (:mod:`.corpus_segments`),
which ``/range`` serves at once, deleting the rows in the transaction that writes the
segments, so that two compactors never fold the same row; :func:`settle_slice` later moves
segments into ``leaked_passwords`` (counts summed) the same way; :func:`sweep_spool` removes
spool files no row names.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.clock import utcnow
from exposure.store import corpus_segments
from exposure.store.corpus_segments import DIGEST_BYTES, MAX_COUNT
from exposure.store.dialect import beside_sqlite_file, is_postgres, placeholders
from exposure.store.models import CorpusPending

log = logging.getLogger("exposure.corpus")

pending = cast(Table, CorpusPending.__table__)

# A batch's digests are staged in rows of at most this many (2 MB).
STAGE_ROW_DIGESTS = 100_000
# A fold takes this many staged rows (3M digests): it reads and tallies them before its
# transaction, which then only deletes them and writes a few thousand segment rows, so the
# write lock is held briefly however large the fold (bench/corpus_fold.py --rows-per-fold).
ROWS_PER_FOLD = 30
# A spool file no row names is a batch that never committed (a killed ingest); one this old
# cannot belong to a batch still on its way to its commit.
ORPHAN_SECONDS = 24 * 3600
# Digests sorted and counted as fixed-size byte strings: numpy compares these with memcmp,
# about four times faster than as opaque records (and in the same order, unsigned bytes).
_SORTABLE = np.dtype(f"S{DIGEST_BYTES}")


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One ``corpus_pending`` row to stage: its digests (in the row, or in a spool file) and
    how many there are."""

    digest_count: int
    staged_at: datetime
    digests: bytes | None = field(default=None, repr=False)
    spool_file: str | None = None


class Spool:
    """Spool files in ``directory``, where staged digests beside a SQLite file wait for the
    fold (elsewhere the ``corpus_pending`` rows hold them).

    SQLite writes every byte twice (its WAL, then the checkpoint into the database), and a
    10M-line dump stages 200 MB: 0.7 s of a 4 s ingest, measured. A spool file is on disk
    (fsync) before the row naming it commits, so a committed row always finds its file.
    PostgreSQL keeps digests in its rows: its ingests and folds may run on different hosts.
    """

    SUFFIX = "-corpus"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, parts: Iterable[bytes | memoryview]) -> list[str]:
        """Write each part to a new spool file, all synced to disk (their directory entries
        too); return their names."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        names = []
        for part in parts:
            name = f"{uuid.uuid4().hex}.sha1"
            fd = os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb", closefd=False) as spooled:
                    spooled.write(part)
                os.fdatasync(fd)
            finally:
                os.close(fd)
            names.append(name)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return names

    def read(self, name: str, count: int) -> bytes | None:
        """The ``count`` digests of spool file ``name``; None when the file is gone or cut
        short (folded meanwhile by another compactor, or a database restored without its
        spool: the caller tells which)."""
        try:
            digests = (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None
        return digests if len(digests) == count * DIGEST_BYTES else None

    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            (self.directory / name).unlink(missing_ok=True)

    def sweep(self, named: set[str], *, older_than: float = ORPHAN_SECONDS) -> int:
        """Remove the spool files no row names (batches that never committed) once
        ``older_than`` seconds old; return how many."""
        if not self.directory.is_dir():
            return 0
        cutoff, removed = time.time() - older_than, 0
        for path in self.directory.glob("*.sha1"):
            try:
                orphan = path.name not in named and path.stat().st_mtime < cutoff
            except FileNotFoundError:  # folded and removed meanwhile by another compactor
                continue
            if orphan:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def spool_of(bind: AsyncConnection | AsyncEngine) -> Spool | None:
    """The spool of a database: ``<database file>-corpus/`` beside a SQLite file; none for
    PostgreSQL or an in-memory or URI-named SQLite database."""
    folder = beside_sqlite_file(bind, Spool.SUFFIX)
    return None if folder is None else Spool(folder)


def pending_rows(digests: bytes, spool: Spool | None) -> list[PendingRow]:
    """The ``corpus_pending`` rows that stage ``digests`` (concatenated 20-byte SHA-1 values,
    repeats count), their spool files (with a ``spool``) written and synced. Blocking: call it
    on a worker thread."""
    if len(digests) % DIGEST_BYTES:
        raise ValueError("digests must be whole 20-byte SHA-1 values")
    now, step, view = utcnow(), STAGE_ROW_DIGESTS * DIGEST_BYTES, memoryview(digests)
    parts = [view[start : start + step] for start in range(0, len(digests), step)]
    counts = [len(part) // DIGEST_BYTES for part in parts]
    if spool is None:
        return [
            PendingRow(count, now, digests=bytes(part))
            for count, part in zip(counts, parts, strict=True)
        ]
    names = spool.write(parts)
    return [
        PendingRow(count, now, spool_file=name) for count, name in zip(counts, names, strict=True)
    ]


async def stage(conn: AsyncConnection, digests: bytes) -> None:
    """Stage concatenated 20-byte SHA-1 digests (repeats count) for the corpus."""
    await stage_rows(conn, await asyncio.to_thread(pending_rows, digests, spool_of(conn)))


async def stage_rows(conn: AsyncConnection, rows: list[PendingRow]) -> None:
    """Insert the rows :func:`pending_rows` prepared, in the transaction that counts them."""
    if rows:
        await conn.execute(
            insert(pending),
            [
                {
                    "digest_count": row.digest_count,
                    "staged_at": row.staged_at,
                    "digests": row.digests,
                    "spool_file": row.spool_file,
                }
                for row in rows
            ],
        )


async def pending_digests(conn: AsyncConnection) -> int:
    """How many staged digests wait to be folded (a gauge for operators)."""
    total = await conn.execute(select(func.coalesce(func.sum(pending.c.digest_count), 0)))
    return int(total.scalar_one())


async def compact(
    engine: AsyncEngine,
    *,
    stop: asyncio.Event | None = None,
    rows: int | None = None,
    settle: bool = True,
) -> int:
    """Fold every staged row into corpus segments, ``rows`` (default :data:`ROWS_PER_FOLD`)
    staged rows per transaction (``/range`` serves them from then on); then, with ``settle``,
    settle every segment into ``leaked_passwords``. Return the digests folded. With ``stop``,
    return early once it is set (between two transactions)."""
    rows = rows or ROWS_PER_FOLD
    folded = 0
    started = time.perf_counter()
    spool = spool_of(engine)
    while stop is None or not stop.is_set():
        digests = await fold_staged(engine, spool, rows)
        if digests is None:
            break
        folded += digests
    if folded:
        log.info(
            "corpus folded",
            extra={"digests": folded, "seconds": round(time.perf_counter() - started, 2)},
        )
    if settle:
        await settle_all(engine, stop=stop)
    return folded


class _TakenElsewhere(Exception):
    """Another compactor took some of the staged rows this fold read: it rolls back."""


async def fold_staged(engine: AsyncEngine, spool: Spool | None, rows: int) -> int | None:
    """Fold the ``rows`` oldest staged rows into corpus segments; return their digests, or
    None when nothing is staged.

    The rows are read and tallied first, outside any transaction; then one short transaction
    deletes them and writes the segments. Should another compactor have taken any of them
    meanwhile, it rolls back and this fold counts nothing (0), so each staged row is counted
    exactly once, and the write lock is held only for the writes.
    """
    async with engine.connect() as conn:
        staged = (
            await conn.execute(
                select(
                    pending.c.id, pending.c.digests, pending.c.spool_file, pending.c.digest_count
                )
                .order_by(pending.c.id)
                .limit(rows)
            )
        ).all()
    if not staged:
        return None
    parts = [await _digests_of(spool, *row[1:]) for row in staged]
    digests = b"".join(part for part in parts if part is not None)
    segment_rows = await asyncio.to_thread(_segment_rows, digests)
    ids = [row.id for row in staged]
    try:
        async with engine.begin() as conn:
            taken = await conn.execute(
                delete(pending).where(pending.c.id.in_(ids)).returning(pending.c.id)
            )
            if len(taken.all()) != len(ids):
                raise _TakenElsewhere
            await corpus_segments.write(conn, segment_rows)
    except _TakenElsewhere:
        return 0
    for row, part in zip(staged, parts, strict=True):
        if part is None:
            log.error(
                "staged corpus digests lost: spool file missing or cut short",
                extra={"spool_file": row.spool_file, "digests": row.digest_count},
            )
    spooled = [row.spool_file for row in staged if row.spool_file is not None]
    if spooled and spool is not None:
        # Only once the fold has committed: a fold rolled back leaves its rows to the next.
        await asyncio.to_thread(spool.remove, spooled)
    return len(digests) // DIGEST_BYTES


async def _digests_of(
    spool: Spool | None, digests: bytes | None, spool_file: str | None, count: int
) -> bytes | None:
    """A staged row's digests: its own, or its spool file's; None when they are lost."""
    if digests is not None:
        return bytes(digests)
    if spool is None or spool_file is None:  # a SQLite file opened by a URI name, say
        return None
    return await asyncio.to_thread(spool.read, spool_file, count)


def _segment_rows(digests: bytes) -> list[tuple[int, int, bytes]]:
    """The corpus segments of concatenated ``digests``: each distinct digest once, with how
    often it occurs, in ascending byte order."""
    distinct, counts = np.unique(np.frombuffer(digests, dtype=_SORTABLE), return_counts=True)
    return corpus_segments.segment_rows(distinct, counts)


async def settle_all(engine: AsyncEngine, *, stop: asyncio.Event | None = None) -> int:
    """Settle every corpus segment into ``leaked_passwords``, a slice per transaction (until
    ``stop`` is set); return the distinct digests written."""
    settled = 0
    while stop is None or not stop.is_set():
        records = await settle_slice(engine)
        if records is None:
            break
        settled += records
    return settled


async def settle_slice(engine: AsyncEngine) -> int | None:
    """Move the segments of the lowest slice holding any into ``leaked_passwords`` (counts
    summed, capped) in one transaction; return the distinct digests written, or None when no
    segment is left."""
    table = corpus_segments.segments
    async with engine.begin() as conn:
        first = (await conn.execute(select(func.min(table.c.segment)))).scalar()
        if first is None:
            return None
        start = first - first % corpus_segments.SETTLE_SEGMENTS
        taken = await conn.execute(
            delete(table)
            .where(table.c.segment >= start)
            .where(table.c.segment < start + corpus_segments.SETTLE_SEGMENTS)
            .returning(table.c.records)
        )
        blobs = [bytes(blob) for blob in taken.scalars()]
        if not blobs:  # another settler took the slice after the first read
            return 0
        distinct, counts = await asyncio.to_thread(corpus_segments.merged, blobs)
        await upsert_counts(conn, distinct, counts)
        return len(counts)


async def upsert_counts(conn: AsyncConnection, distinct: bytes, counts: list[int]) -> None:
    """Add counts (of ``distinct`` digests, concatenated in ascending order) to the corpus
    table in one set-based statement, summed and capped at :data:`MAX_COUNT`: the database
    walks the sorted keys itself instead of running one upsert per digest from Python (2-3x
    faster on both backends, measured by an earlier bench/corpus_fold.py)."""
    smaller = "LEAST" if is_postgres(conn) else "MIN"
    capped = f"{smaller}(CAST(leaked_passwords.count AS BIGINT) + excluded.count, {MAX_COUNT})"
    if is_postgres(conn):
        # Two arrays, one round trip: asyncpg encodes them in binary.
        await conn.exec_driver_sql(
            "INSERT INTO leaked_passwords (sha1, count) "  # noqa: S608 (fixed text)
            f"SELECT sha1, LEAST(n, {MAX_COUNT}) FROM unnest($1::bytea[], $2::bigint[]) "
            f"AS staged (sha1, n) ON CONFLICT (sha1) DO UPDATE SET count = {capped}",
            (
                [distinct[at : at + DIGEST_BYTES] for at in range(0, len(distinct), DIGEST_BYTES)],
                counts,
            ),
        )
        return
    # SQLite splits the blob itself: json_each yields the counts in array order, so the keys
    # arrive sorted. "WHERE true" tells the parser the ON CONFLICT belongs to the INSERT.
    await conn.exec_driver_sql(
        "INSERT INTO leaked_passwords (sha1, count) "  # noqa: S608 (fixed text)
        f"SELECT substr(?, key * {DIGEST_BYTES} + 1, {DIGEST_BYTES}), MIN(value, {MAX_COUNT}) "
        "FROM json_each(?) WHERE true "
        f"ON CONFLICT (sha1) DO UPDATE SET count = {capped}",
        (distinct, json.dumps(counts)),
    )


async def sweep_spool(engine: AsyncEngine) -> int:
    """Remove the spool files of batches that never committed (see :meth:`Spool.sweep`);
    return how many. Orphans come only from killed ingests and wait a day, so callers sweep
    now and then (the API hourly), not with every fold."""
    spool = spool_of(engine)
    if spool is None:
        return 0
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(pending.c.spool_file).where(pending.c.spool_file.isnot(None))
        )
        named = {name for (name,) in rows}
    if removed := await asyncio.to_thread(spool.sweep, named):
        log.warning("removed spool files of batches that never committed", extra={"files": removed})
    return removed


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
