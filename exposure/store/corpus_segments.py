"""Folded corpus digests in sorted segments: served by ``/range`` at once, settled into
``leaked_passwords`` later (docs/decisions/corpus-segments.md).

A fold (:func:`exposure.store.corpus.compact`) tallies staged digests and writes the tally
here: one ``corpus_segments`` row per 12-bit digest prefix, its records sorted, each a
20-byte SHA-1 and a 4-byte big-endian count. That is thousands of rows however many digests,
where an upsert into ``leaked_passwords`` writes one B-tree entry per distinct digest.
``/range`` reads a prefix's rows in both tables in one statement (:func:`corpus_range`) and
sums them. :func:`exposure.store.corpus.settle_slice` moves a slice of segments into
``leaked_passwords`` in one transaction (deleted here, upserted there), so a digest is always
counted in exactly one table, and the rows a prefix reads stay few.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Integer, LargeBinary, Table, func, null, select, union_all
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.dialect import insert_rows, is_postgres
from exposure.store.models import CorpusSegment, LeakedPassword

segments = cast(Table, CorpusSegment.__table__)
leaked_passwords = cast(Table, LeakedPassword.__table__)

DIGEST_BYTES = 20
# The count column of leaked_passwords is a 32-bit integer: sums are capped, never overflow.
MAX_COUNT = 2**31 - 1
# A 5-hex /range prefix (20 bits) lies inside one segment: a fold of 3M digests writes 4,096
# rows of about 700 records, and a prefix reads one row per unsettled fold.
SEGMENT_BITS = 12
SEGMENTS = 1 << SEGMENT_BITS
# Segments settled per transaction: a 64th of the digest space, so the write lock a settle
# holds stays near a second with millions of records waiting.
SETTLE_SEGMENTS = 64
# Records sort and compare as their raw bytes: numpy orders fixed-size byte strings by memcmp.
RECORD = np.dtype([("sha1", f"S{DIGEST_BYTES}"), ("count", ">u4")])
_COLUMNS = ("segment", "record_count", "records")


def segment_of(digest: bytes) -> int:
    """The segment of a digest (or of any bytes it starts with, two at least)."""
    return int.from_bytes(digest[:2], "big") >> (16 - SEGMENT_BITS)


def segment_rows(
    distinct: npt.NDArray[np.bytes_], counts: npt.NDArray[np.integer]
) -> list[tuple[int, int, bytes]]:
    """``(segment, record_count, records)`` of every segment the sorted, distinct digests
    ``distinct`` (dtype ``S20``) fall in, each digest with its count (capped)."""
    records = np.empty(len(distinct), RECORD)
    records["sha1"] = distinct
    records["count"] = np.minimum(counts, MAX_COUNT)
    heads = distinct.view(np.uint8).reshape(-1, DIGEST_BYTES)[:, :2].astype(np.int64)
    of = ((heads[:, 0] << 8) | heads[:, 1]) >> (16 - SEGMENT_BITS)
    bounds = np.searchsorted(of, np.arange(SEGMENTS + 1)).tolist()
    return [
        (segment, end - start, records[start:end].tobytes())
        for segment, (start, end) in enumerate(pairwise(bounds))
        if end > start
    ]


async def write(conn: AsyncConnection, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert :func:`segment_rows`' rows in the caller's transaction (which has run a
    statement already: on PostgreSQL the rows go by ``COPY`` on its connection)."""
    if not is_postgres(conn):
        await insert_rows(conn, segments, _COLUMNS, rows)
        return
    # Binary COPY took a fold's 4,096 rows (72 MB) in 0.23 s, the multi-row INSERT in 0.51 s.
    driver = (await conn.get_raw_connection()).driver_connection
    if driver is None or not driver.is_in_transaction():  # COPY would commit on its own
        raise RuntimeError("corpus segments are written inside the fold's transaction")
    await driver.copy_records_to_table(segments.name, records=rows, columns=_COLUMNS)


def merged(blobs: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """The distinct digests of several segments' records, concatenated in ascending order,
    and each one's summed count (uncapped: the upsert caps)."""
    records = np.concatenate([np.frombuffer(blob, RECORD) for blob in blobs])
    distinct, inverse = np.unique(records["sha1"], return_inverse=True)
    sums = np.bincount(inverse, weights=records["count"].astype(np.float64))
    return distinct.tobytes(), sums.astype(np.int64).tolist()


async def waiting_records(conn: AsyncConnection) -> int:
    """Records in segments, not yet settled (a digest folded twice counts twice)."""
    total = await conn.execute(select(func.coalesce(func.sum(segments.c.record_count), 0)))
    return int(total.scalar_one())


async def corpus_range(
    conn: AsyncConnection, low: bytes, high: bytes | None
) -> list[tuple[bytes, int]]:
    """Every corpus digest with ``low <= sha1 < high`` (no upper bound when ``high`` is
    None) and its count, summed over both tables and capped, ordered by digest. The digests in
    between must share one segment, as a /range prefix's do (``low``'s is read).

    One statement reads both tables, so a settle committing meanwhile (rows leaving one table
    for the other) is seen wholly or not at all, on PostgreSQL as on SQLite.
    """
    table = select(
        leaked_passwords.c.sha1,
        leaked_passwords.c.count,
        sql_cast(null(), LargeBinary).label("records"),
    ).where(leaked_passwords.c.sha1 >= low)
    if high is not None:
        table = table.where(leaked_passwords.c.sha1 < high)
    folded = select(
        sql_cast(null(), LargeBinary), sql_cast(null(), Integer), segments.c.records
    ).where(segments.c.segment == segment_of(low))
    counts: dict[bytes, int] = {}
    for sha1, count, records in await conn.execute(union_all(table, folded)):
        if records is None:
            counts[bytes(sha1)] = counts.get(bytes(sha1), 0) + int(count)
            continue
        for digest, found in _records_between(bytes(records), low, high):
            counts[digest] = counts.get(digest, 0) + found
    return [(digest, min(count, MAX_COUNT)) for digest, count in sorted(counts.items())]


def _records_between(blob: bytes, low: bytes, high: bytes | None) -> list[tuple[bytes, int]]:
    """The records of one segment row with ``low <= sha1 < high``, found by binary search."""
    records = np.frombuffer(blob, RECORD)
    keys = records["sha1"]
    start = int(np.searchsorted(keys, np.bytes_(low)))
    end = len(records) if high is None else int(np.searchsorted(keys, np.bytes_(high)))
    chosen = records[start:end]
    # The field's buffer, not its items: an item's bytes() drops trailing zero bytes.
    raw = chosen["sha1"].tobytes()
    return [
        (raw[at * DIGEST_BYTES : (at + 1) * DIGEST_BYTES], count)
        for at, count in enumerate(chosen["count"].tolist())
    ]
