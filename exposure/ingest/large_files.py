"""Large dumps, split into byte ranges that any replica ingests (docs/architecture.md,
"Large files").

A connector never has a big plain-text dump read whole: it yields a
:class:`~connectors.base.LargeFilePage`, and the runner
(:mod:`exposure.ingest.connector_runner`, the one place that writes) calls :func:`register_file`:

1. the format is detected ONCE from the head of the whole file (:func:`range_format`); a
   container, UTF-16 text or a format that is not line-local is not chunked (``None``: the
   runner ingests it whole, as before);
2. the file is split into line-aligned ranges (:func:`split_ranges`) registered in
   ``ingest_chunks`` under the file's keyed content digest; registering again (a second look,
   another replica, a re-dropped copy) adds nothing.

Then :func:`work` claims one chunk at a time (``FOR UPDATE SKIP LOCKED`` + a lease that a
background task renews), ingests exactly that range through
:meth:`~exposure.ingest.pipeline.Ingestor.ingest_range` and marks the chunk done in the same
transaction as the range's last batch. Whoever finishes a file's last chunk moves the file into
the done folder its record names (the page's ``done_folder``, stored with the ranges, so any
replica can finish it); two finishers racing for the move is harmless (the loser finds it gone).

Every daemon replica runs :func:`work` as its ``chunks`` job (not under the folder connector's
advisory lock), and ``exposure connectors run folder`` runs it for the file it just registered
before returning, so one machine still ingests a big file in one command. The inbox must be the
same shared folder, at the same path, on every replica that runs the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.base import move_into
from exposure.clock import full_jitter, utcnow
from exposure.dumps.reader import range_format
from exposure.errors import RetriableError
from exposure.ingest.input_keys import content_key
from exposure.ingest.pipeline import Finalizer, Ingestor
from exposure.ingest.results import ChunkResult, LargeFileResult
from exposure.settings import Settings
from exposure.store import large_files as q
from exposure.store.large_files import ChunkSpec, ClaimedChunk, FileProgress
from exposure.store.leases import new_owner_id
from exposure.store.reconnect import (
    Backoff,
    DatabaseUnavailable,
    describe,
    is_transient,
    pause,
    retrying,
)

log = logging.getLogger("exposure.ingest.large_files")

# A chunk is held this long without a renewal; the holder renews it every sixth of that
# (retrying through a lost connection), so only a dead or wedged holder lets it run out and
# another replica take the chunk over. A daemon restarted on the same host takes its own
# previous claims back at once (its owner id is stable: exposure/runtime/instance.py).
LEASE_SECONDS = 120.0
RENEWALS_PER_LEASE = 6
# Claims of one chunk before it is left alone (pending, visible in ingest_chunks.attempts).
MAX_ATTEMPTS = 5
# After a failure the chunk is claimable again this long times its attempts later.
RETRY_SECONDS = 30.0
# How long a stopping worker tries to give its chunk back before leaving it to its lease.
RELEASE_ON_STOP_SECONDS = 2.0
_SCAN_BYTES = 64 << 10

IngestorFactory = Callable[[], Awaitable[Ingestor]]


class LeaseLost(RetriableError):
    """Another claimer took the chunk over (our lease ran out); our last batch rolled back."""

    def __init__(self, chunk_id: int) -> None:
        self.chunk_id = chunk_id
        super().__init__(f"the lease of ingest chunk {chunk_id} was lost to another claimer")


def split_ranges(path: Path, chunk_bytes: int) -> list[ChunkSpec]:
    """Line-aligned ranges of about ``chunk_bytes`` covering every byte of the file once.

    Each boundary is found by seeking to the next multiple of ``chunk_bytes`` and moving past
    the next ``\\n``; a line longer than a chunk simply makes its range longer (targets that
    fall inside it are skipped), and a last line without ``\\n`` ends the last range.
    """
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as handle:
        target = chunk_bytes
        while target < size:
            if target > starts[-1]:
                boundary = _after_newline(handle, target)
                if boundary is None or boundary >= size:
                    break
                starts.append(boundary)
            target += chunk_bytes
    ends = [*starts[1:], size]
    pairs = zip(starts, ends, strict=True)
    return [ChunkSpec(n, start, end - 1) for n, (start, end) in enumerate(pairs)]


def _after_newline(handle: BinaryIO, position: int) -> int | None:
    """The offset just past the first ``\\n`` at or after ``position``; ``None`` at EOF."""
    handle.seek(position)
    while block := handle.read(_SCAN_BYTES):
        found = block.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(block)
    return None


async def register_file(
    engine: AsyncEngine,
    settings: Settings,
    path: Path,
    *,
    chunk_bytes: int,
    source: str,
    done_folder: Path | None = None,
) -> FileProgress | None:
    """Register the plain file at ``path`` as chunks (idempotent) and return its progress, or
    ``None`` when it is to be ingested whole (small, a container, or not line-local). The
    record keeps ``done_folder``: whoever finishes the last chunk moves the file there."""
    resolved = await asyncio.to_thread(path.resolve)
    size = (await asyncio.to_thread(resolved.stat)).st_size
    if size <= chunk_bytes:
        return None
    where = str(resolved)
    async with engine.connect() as conn:
        # Still being worked on: skip re-hashing a big file at every look of the connector.
        known = await q.unfinished_at(conn, where, size)
    if known is not None:
        return known
    fmt = await asyncio.to_thread(range_format, path)
    if fmt is None:
        return None
    key = await asyncio.to_thread(content_key, settings.pepper.reveal(), path)
    async with engine.connect() as conn:
        known = await q.progress(conn, key)
    if known is not None:
        return known  # registered before (maybe complete: the caller moves the file then)
    ranges = await asyncio.to_thread(split_ranges, path, chunk_bytes)
    async with engine.begin() as conn:
        added = await q.register(
            conn,
            file_key=key,
            path=where,
            done_folder=None if done_folder is None else str(done_folder),
            file_bytes=size,
            fmt=fmt,
            source=source,
            ranges=ranges,
            now=utcnow(),
        )
        registered = await q.progress(conn, key)
    log.info("chunks: %s registered as %d chunk(s) (%d new)", path.name, len(ranges), added)
    # Just inserted, or inserted by a concurrent registrar: rows exist either way.
    return registered or FileProgress(key, where, len(ranges), 0, done_folder=None)


async def take_large_file(
    engine: AsyncEngine,
    settings: Settings,
    ingestor: Ingestor,
    path: Path,
    *,
    chunk_bytes: int,
    done_folder: Path | None,
    source: str,
    work_now: bool,
    stop: asyncio.Event | None = None,
    finalize: Finalizer | None = None,
) -> LargeFileResult | None:
    """The runner's side of a large file: register its chunks and, when ``work_now`` (a manual
    run), ingest them with ``ingestor`` before returning. ``None`` when the file is not to be
    chunked. The result says whether the file is complete (then the connector moves it, unless
    a chunk worker already did). ``finalize`` (the connector's cursor) commits once the chunks
    are registered and, if asked, ingested."""
    progress = await register_file(
        engine, settings, path, chunk_bytes=chunk_bytes, source=source, done_folder=done_folder
    )
    if progress is None:
        return None
    done: list[ChunkResult] = []
    if work_now and not progress.complete:

        async def same_ingestor() -> Ingestor:
            return ingestor

        done = await work(
            engine, same_ingestor, owner=new_owner_id(), stop=stop, file_key=progress.file_key
        )
        progress = await file_progress(engine, progress.file_key) or progress
    if finalize is not None:
        async with engine.begin() as conn:
            await finalize(conn)
    return LargeFileResult(
        input=path.name,
        source=source,
        chunks=progress.chunks,
        chunks_done=progress.done,
        ingested=tuple(done),
    )


async def work(
    engine: AsyncEngine,
    make_ingestor: IngestorFactory,
    *,
    owner: str,
    stop: asyncio.Event | None = None,
    file_key: str | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> list[ChunkResult]:
    """Claim and ingest chunks one at a time until none is claimable (or ``stop`` is set);
    ``file_key`` limits the work to one file. Returns what each ingested chunk came to.

    The ingestor is made only once a chunk was claimed: an idle tick costs one query, not a
    load of the enrolled index. A chunk whose file cannot be read is given back for a later
    retry and the work goes on; a lost database connection sends the chunk round again from
    its last committed batch (the chunk is given back as soon as the database answers, and
    the attempt is not counted); any other error gives the chunk back and is raised.
    """
    ingestor: Ingestor | None = None
    results: list[ChunkResult] = []
    lease = timedelta(seconds=lease_seconds)
    lost_connections = 0
    while stop is None or not stop.is_set():
        now = utcnow()
        async with engine.begin() as conn:
            chunk = await q.claim(
                conn,
                owner=owner,
                now=now,
                lease_until=now + lease,
                max_attempts=MAX_ATTEMPTS,
                file_key=file_key,
            )
        if chunk is None:
            break
        if ingestor is None:
            ingestor = await make_ingestor()
        try:
            results.append(await _ingest_chunk(engine, ingestor, chunk, owner, lease))
            lost_connections = 0
        except LeaseLost as error:
            log.warning("chunks: %s", error)
        except asyncio.CancelledError:
            # Stopping: give the chunk back now rather than when its lease runs out.
            await _release_on_the_way_out(engine, chunk, owner)
            raise
        except Exception as error:
            if is_transient(error):
                lost_connections += 1
                await _after_lost_connection(engine, chunk, owner, error, lost_connections, stop)
                continue
            await _release(engine, chunk, owner)
            if not isinstance(error, OSError):
                raise
            log.warning(
                "chunks: chunk %d of %s unreadable (%s); retried later",
                chunk.chunk_no,
                Path(chunk.path).name,
                type(error).__name__,
            )
    return results


async def _after_lost_connection(
    engine: AsyncEngine,
    chunk: ClaimedChunk,
    owner: str,
    error: Exception,
    failures: int,
    stop: asyncio.Event | None,
) -> None:
    """The chunk's ingest lost its database connection: the batches it committed stay, the
    one in flight rolled back. Wait a little, give the attempt back (a connection drop is not
    the chunk's fault) and let the loop claim it again: it resumes from its checkpoint."""
    delay = full_jitter(failures, base=0.5, cap=15.0)
    log.warning(
        "chunks: chunk %d of %s lost its database connection (%s); resuming from its last "
        "committed batch in %.1f s",
        chunk.chunk_no,
        Path(chunk.path).name,
        describe(error),
        delay,
    )
    await pause(stop, delay)

    async def release() -> None:
        async with engine.begin() as conn:
            await q.release(conn, chunk.id, owner, utcnow(), uncount=True)

    # Until the lease would have run out anyway; a stop leaves it to the next start (which
    # takes back this owner's chunks) or to the lease.
    with contextlib.suppress(DatabaseUnavailable):
        await retrying(
            release,
            what=f"giving back ingest chunk {chunk.id}",
            stop=stop,
            backoff=Backoff(cap=5.0, patience=LEASE_SECONDS),
        )


async def _ingest_chunk(
    engine: AsyncEngine,
    ingestor: Ingestor,
    chunk: ClaimedChunk,
    owner: str,
    lease: timedelta,
) -> ChunkResult:
    async def finalize(conn: AsyncConnection) -> None:
        # In the range's last transaction: done exactly when its data is committed.
        if not await q.mark_done(conn, chunk.id, owner, utcnow()):
            raise LeaseLost(chunk.id)

    renewer = asyncio.create_task(_keep_lease(engine, chunk, owner, lease))
    try:
        result = await ingestor.ingest_range(
            Path(chunk.path),
            chunk.start,
            chunk.end,
            file_key=chunk.file_key,
            fmt=chunk.format,
            source=chunk.source,
            finalize=finalize,
        )
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
    log.info(
        "chunks: chunk %d of %s ingested (%d records)",
        chunk.chunk_no,
        Path(chunk.path).name,
        result.records,
        extra={"lease_owner": owner},
    )
    await _finish_file(engine, chunk)
    return ChunkResult(file_key=chunk.file_key, chunk_no=chunk.chunk_no, result=result)


async def _keep_lease(
    engine: AsyncEngine, chunk: ClaimedChunk, owner: str, lease: timedelta
) -> None:
    """Renew the lease until cancelled; through a lost connection, retry until it would have
    run out (then another claimer may take the chunk, and finalize notices)."""
    every = lease.total_seconds() / RENEWALS_PER_LEASE
    expires = time.monotonic() + lease.total_seconds()
    while True:
        await asyncio.sleep(every)

        async def renew() -> bool:
            async with engine.begin() as conn:
                return await q.renew(conn, chunk.id, owner, utcnow() + lease)

        try:
            held = await retrying(
                renew,
                what=f"renewing the lease of ingest chunk {chunk.id}",
                backoff=Backoff(base=0.5, cap=5.0, patience=expires - time.monotonic() - 1),
            )
        except DatabaseUnavailable:
            return  # the lease runs out: finalize will notice if someone took the chunk
        if not held:
            return  # taken over: finalize will notice and roll the last batch back
        expires = time.monotonic() + lease.total_seconds()


async def _release(engine: AsyncEngine, chunk: ClaimedChunk, owner: str) -> None:
    retry_at = utcnow() + timedelta(seconds=RETRY_SECONDS * chunk.attempts)
    async with engine.begin() as conn:
        await q.release(conn, chunk.id, owner, retry_at)


async def _release_on_the_way_out(engine: AsyncEngine, chunk: ClaimedChunk, owner: str) -> None:
    """Give the chunk back, claimable at once and the attempt uncounted, within a second or
    two; shielded from the cancellation that is stopping us."""

    async def release() -> None:
        async with engine.begin() as conn:
            await q.release(conn, chunk.id, owner, utcnow(), uncount=True)

    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(release()), RELEASE_ON_STOP_SECONDS)


async def _finish_file(engine: AsyncEngine, chunk: ClaimedChunk) -> None:
    """Move the file into its record's done folder once every chunk is done. Checked after the
    commit: inside the transaction two finishers of the last two chunks would each miss the
    other's row; two finishers racing for the move is harmless (the loser finds it gone)."""
    async with engine.connect() as conn:
        progress = await q.progress(conn, chunk.file_key)
    if progress is None or not progress.complete:
        return
    path = Path(chunk.path)
    log.info("chunks: %s complete (%d chunks)", path.name, progress.chunks)
    if progress.done_folder is None:
        return
    size = await asyncio.to_thread(_size, path)
    if size is not None and progress.file_bytes is not None and size != progress.file_bytes:
        # Written to since it was split: the bytes past the last range were never read. Left
        # where it is, the drop folder registers it again as what it is now (the ranges read
        # already only add sightings).
        log.warning(
            "chunks: %s changed while it was ingested (%d bytes, %d when split); left in "
            "place to be ingested again",
            path.name,
            size,
            progress.file_bytes,
        )
        return
    await asyncio.to_thread(move_into, path, Path(progress.done_folder))


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None  # moved already, by another replica finishing the same file


async def file_progress(engine: AsyncEngine, file_key: str) -> FileProgress | None:
    """The progress of a registered file (``None`` if it never was)."""
    async with engine.connect() as conn:
        return await q.progress(conn, file_key)
