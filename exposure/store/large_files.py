"""Named queries over ``ingest_chunks``: registering a large dump's byte ranges, claiming them
with a lease, renewing, releasing and finishing them.

Claiming is a lease (:mod:`exposure.store.leases`), like the outbox's: concurrent claimers
pick different chunks, and a dead claimer's chunk is claimable again once its lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.dialect import upsert
from exposure.store.leases import claim_rows, unleased
from exposure.store.models import IngestChunk

chunks = cast(Table, IngestChunk.__table__)


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """One byte range to register: bytes ``start`` to ``end``, both inclusive."""

    chunk_no: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ClaimedChunk:
    """A chunk this claimer holds the lease of."""

    id: int
    file_key: str
    path: str
    chunk_no: int
    start: int
    end: int
    format: str
    source: str
    attempts: int


@dataclass(frozen=True, slots=True)
class FileProgress:
    """How far a registered file is: ``done`` of ``chunks`` ranges ingested; once complete, the
    file goes into ``done_folder`` (``None``: it stays where it is)."""

    file_key: str
    path: str
    chunks: int
    done: int
    done_folder: str | None = None
    file_bytes: int | None = None  # its size when registered

    @property
    def complete(self) -> bool:
        return self.done == self.chunks


async def register(
    conn: AsyncConnection,
    *,
    file_key: str,
    path: str,
    done_folder: str | None,
    file_bytes: int,
    fmt: str,
    source: str,
    ranges: Sequence[ChunkSpec],
    now: datetime,
) -> int:
    """Insert the file's ranges as pending chunks; ranges already there are left alone (the
    unique (file_key, chunk_no) decides). Returns how many rows were new."""
    rows = [
        {
            "file_key": file_key,
            "path": path,
            "done_folder": done_folder,
            "file_bytes": file_bytes,
            "chunk_no": spec.chunk_no,
            "start_byte": spec.start,
            "end_byte": spec.end,
            "format": fmt,
            "source": source,
            "state": "pending",
            "attempts": 0,
            "created_at": now,
        }
        for spec in ranges
    ]
    if not rows:
        return 0
    statement = (
        upsert(conn, chunks)
        .on_conflict_do_nothing(index_elements=["file_key", "chunk_no"])
        .returning(chunks.c.id)
    )
    return len((await conn.execute(statement, rows)).all())


async def progress(conn: AsyncConnection, file_key: str) -> FileProgress | None:
    """The file's progress, or ``None`` when it was never registered."""
    return await _progress(conn, chunks.c.file_key == file_key)


async def unfinished_at(conn: AsyncConnection, path: str, file_bytes: int) -> FileProgress | None:
    """The progress of an unfinished file registered at ``path`` with this size, if any: lets
    a second look at a file still being worked on skip re-hashing it."""
    found = (
        await conn.execute(
            select(chunks.c.file_key)
            .where(
                chunks.c.path == path,
                chunks.c.file_bytes == file_bytes,
                chunks.c.state != "done",
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    return None if found is None else await progress(conn, found)


async def _progress(conn: AsyncConnection, where: Any) -> FileProgress | None:
    row = (
        await conn.execute(
            select(
                chunks.c.file_key,
                func.min(chunks.c.path),
                func.count(),
                func.count().filter(chunks.c.state == "done"),
                func.min(chunks.c.done_folder),
                func.min(chunks.c.file_bytes),
            )
            .where(where)
            .group_by(chunks.c.file_key)
        )
    ).first()
    if row is None:
        return None
    return FileProgress(row[0], row[1], int(row[2]), int(row[3]), row[4], row[5])


def _claimable(now: datetime, max_attempts: int) -> Any:
    return and_(
        chunks.c.state != "done",
        unleased(chunks, now),
        chunks.c.attempts < max_attempts,
    )


async def claim(
    conn: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease_until: datetime,
    max_attempts: int,
    file_key: str | None = None,
) -> ClaimedChunk | None:
    """Lease one chunk that is pending, or whose holder's lease ran out (oldest first); count
    the attempt. ``file_key`` limits the claim to one file's chunks."""
    claimable = _claimable(now, max_attempts)
    if file_key is not None:
        claimable = and_(claimable, chunks.c.file_key == file_key)
    claimed = await claim_rows(
        conn,
        chunks,
        claimable=claimable,
        order_by=(chunks.c.id,),
        limit=1,
        values={
            "state": "claimed",
            "lease_owner": owner,
            "lease_until": lease_until,
            "attempts": chunks.c.attempts + 1,
        },
        returning=(
            chunks.c.id,
            chunks.c.file_key,
            chunks.c.path,
            chunks.c.chunk_no,
            chunks.c.start_byte,
            chunks.c.end_byte,
            chunks.c.format,
            chunks.c.source,
            chunks.c.attempts,
        ),
    )
    return ClaimedChunk(*tuple(claimed[0])) if claimed else None


def _held(chunk_id: int, owner: str) -> Any:
    return and_(chunks.c.id == chunk_id, chunks.c.lease_owner == owner, chunks.c.state == "claimed")


async def renew(conn: AsyncConnection, chunk_id: int, owner: str, lease_until: datetime) -> bool:
    """Extend the lease; ``False`` when ``owner`` no longer holds it."""
    result = await conn.execute(
        update(chunks).where(_held(chunk_id, owner)).values(lease_until=lease_until)
    )
    return result.rowcount == 1


async def mark_done(conn: AsyncConnection, chunk_id: int, owner: str, now: datetime) -> bool:
    """Finish the chunk in the caller's transaction; ``False`` when ``owner`` lost the lease."""
    result = await conn.execute(
        update(chunks)
        .where(_held(chunk_id, owner))
        .values(state="done", done_at=now, lease_owner=owner, lease_until=None)
    )
    return result.rowcount == 1


async def release(
    conn: AsyncConnection, chunk_id: int, owner: str, retry_at: datetime, *, uncount: bool = False
) -> None:
    """Give the chunk back; it can be claimed again from ``retry_at``. ``uncount``: the attempt
    was not the chunk's fault (a lost connection, a stop), so it does not count towards the
    chunk's limit."""
    values: dict[str, Any] = {"state": "pending", "lease_owner": None, "lease_until": retry_at}
    if uncount:
        values["attempts"] = chunks.c.attempts - 1  # the claim counted it
    await conn.execute(update(chunks).where(_held(chunk_id, owner)).values(**values))


async def release_owned(conn: AsyncConnection, owner: str, now: datetime) -> int:
    """Give back every chunk ``owner`` holds, claimable at once and the attempt uncounted: a
    daemon starting under its predecessor's owner id takes over what that one left."""
    result = await conn.execute(
        update(chunks)
        .where(chunks.c.lease_owner == owner, chunks.c.state == "claimed")
        .values(
            state="pending",
            lease_owner=None,
            lease_until=now,
            attempts=chunks.c.attempts - 1,
        )
    )
    return result.rowcount or 0
