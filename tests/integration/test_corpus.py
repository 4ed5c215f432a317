"""The staged corpus: ingestion stages digests (in spool files beside a SQLite file, in rows on
PostgreSQL), compaction folds each staged row exactly once into sorted segments (also with two
compactors racing), /range serves segments and table alike, settling moves each segment into
the table exactly once, and the API folds and settles in the background."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import time

import numpy as np
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import password_range as ranges
from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store import corpus, corpus_segments, db, health_queries
from exposure.store.models import CorpusPending, CorpusSegment, LeakedPassword
from tests.conftest import only_postgres, only_sqlite
from tests.integration.test_api_support import add_leaked, api_client, bearer, make_token
from tests.waiting import eventually


def sha1(password: str) -> bytes:
    return hashlib.sha1(password.encode(), usedforsecurity=False).digest()


async def _corpus(engine: AsyncEngine) -> dict[bytes, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(LeakedPassword.sha1, LeakedPassword.count))
        return {bytes(digest): count for digest, count in rows}


async def _stage(engine: AsyncEngine, *batches: list[str]) -> None:
    for batch in batches:
        async with engine.begin() as conn:
            await corpus.stage(conn, b"".join(sha1(p) for p in batch))


async def test_compaction_sums_staged_digests_into_the_corpus(engine: AsyncEngine) -> None:
    await add_leaked(engine, {sha1("password"): 10})
    await _stage(engine, ["password", "Sakura#2025", "password"], [], ["Sakura#2025", "x"])
    async with engine.connect() as conn:
        assert await corpus.pending_digests(conn) == 5
        assert (await conn.execute(select(func.count()).select_from(CorpusPending))).scalar() == 2
    assert await corpus.compact(engine) == 5
    assert await _corpus(engine) == {sha1("password"): 12, sha1("Sakura#2025"): 2, sha1("x"): 1}
    assert await corpus.compact(engine) == 0  # nothing staged: nothing counted twice
    async with engine.connect() as conn:
        assert await corpus.pending_digests(conn) == 0


async def test_two_compactors_fold_every_row_once(database_url: str) -> None:
    batches = [[f"pw{n % 97}" for n in range(i, i + 400)] for i in range(0, 12_000, 400)]
    async with db.open_engine(database_url) as one, db.open_engine(database_url) as two:
        await _stage(one, *batches)
        # Two staged rows per fold: the compactors read the same rows again and again, and
        # whichever claims them second rolls back.
        folded = await asyncio.gather(corpus.compact(one, rows=2), corpus.compact(two, rows=2))
        assert sum(folded) == 12_000
        expected: dict[bytes, int] = {}
        for password in (p for batch in batches for p in batch):
            expected[sha1(password)] = expected.get(sha1(password), 0) + 1
        assert await _corpus(one) == expected


async def test_staging_refuses_partial_digests(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        with pytest.raises(ValueError, match="20-byte"):
            await corpus.stage(conn, b"\x01" * 19)


async def test_the_api_folds_staged_digests_in_the_background(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranges, "COMPACT_EVERY_S", 0.05)
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        await _stage(engine, ["Momiji!77", "Momiji!77"])
        digest = sha1("Momiji!77").hex().upper()

        async def folded() -> bool:
            response = await client.get(f"/range/{digest[:5]}", headers=bearer(token))
            assert response.status == 200
            return f"{digest[5:]}:2" in (await response.text()).split("\r\n")

        await eventually(folded, within=10, what="staged digests to reach /range")


async def test_a_stopped_compaction_folds_nothing_more(engine: AsyncEngine) -> None:
    await _stage(engine, ["a"], ["b"], ["c"], ["d"], ["e"], ["f"])
    stop = asyncio.Event()
    stop.set()
    assert await corpus.compact(engine, stop=stop) == 0
    async with engine.connect() as conn:
        assert await corpus.pending_digests(conn) == 6
    assert await corpus.compact(engine) == 6


async def test_counts_are_capped_at_the_column_limit(engine: AsyncEngine) -> None:
    await add_leaked(engine, {sha1("password"): corpus.MAX_COUNT - 1})
    await _stage(engine, ["password"] * 3)
    assert await corpus.compact(engine) == 3
    assert (await _corpus(engine))[sha1("password")] == corpus.MAX_COUNT
    async with engine.begin() as conn:
        await corpus.merge_corpus_max(conn, [(sha1("password"), 2**40), (sha1("x"), 0)])
    assert await _corpus(engine) == {sha1("password"): corpus.MAX_COUNT}  # no row for 0


async def test_a_large_batch_is_staged_in_bounded_rows(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold's transaction (and the write lock it holds) stays small however large the
    ingest's batches: one batch's digests go into several rows, folded a few at a time."""
    monkeypatch.setattr(corpus, "STAGE_ROW_DIGESTS", 2)
    monkeypatch.setattr(corpus, "ROWS_PER_FOLD", 1)
    await _stage(engine, ["a", "b", "a", "c", "a"])
    async with engine.connect() as conn:
        rows = await conn.execute(select(CorpusPending.digest_count))
        assert sorted(count for (count,) in rows) == [1, 2, 2]
        assert await corpus.pending_digests(conn) == 5
    assert await corpus.compact(engine) == 5
    assert await _corpus(engine) == {sha1("a"): 3, sha1("b"): 1, sha1("c"): 1}


async def test_staged_digests_live_in_spool_files_beside_a_sqlite_file(
    engine: AsyncEngine, backend: str
) -> None:
    await _stage(engine, ["password", "Sakura#2025", "password"])
    spool = corpus.spool_of(engine)
    async with engine.connect() as conn:
        row = (await conn.execute(select(CorpusPending))).one()
    assert row.digest_count == 3
    if backend == "postgres":  # folds may run on another host: the row holds the digests
        assert spool is None
        assert row.digests == sha1("password") + sha1("Sakura#2025") + sha1("password")
        return
    assert spool is not None
    assert spool.directory.name == "exposure.db-corpus"
    assert row.digests is None
    spooled = spool.directory / str(row.spool_file)
    assert spooled.read_bytes() == sha1("password") + sha1("Sakura#2025") + sha1("password")
    assert spooled.stat().st_mode & 0o777 == 0o600
    assert await corpus.compact(engine) == 3
    assert await _corpus(engine) == {sha1("password"): 2, sha1("Sakura#2025"): 1}
    assert list(spool.directory.iterdir()) == []  # folded, then removed


@only_sqlite  # PostgreSQL rows hold their digests: no spool
async def test_a_lost_spool_file_is_reported_and_the_fold_goes_on(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await _stage(engine, ["lost"], ["kept"], ["cut"])
    spool = corpus.spool_of(engine)
    assert spool is not None
    async with engine.connect() as conn:
        names = await conn.execute(select(CorpusPending.spool_file).order_by(CorpusPending.id))
        lost, _, cut = (spool.directory / str(name) for (name,) in names)
    lost.unlink()  # a database restored without its spool, say
    cut.write_bytes(cut.read_bytes()[:7])
    with caplog.at_level(logging.ERROR, logger="exposure.corpus"):
        assert await corpus.compact(engine) == 1
    assert await _corpus(engine) == {sha1("kept"): 1}
    assert [r.message for r in caplog.records].count(
        "staged corpus digests lost: spool file missing or cut short"
    ) == 2
    async with engine.connect() as conn:
        assert await corpus.pending_digests(conn) == 0  # nothing left to fail on again


@only_sqlite
async def test_a_sweep_removes_old_spool_files_no_row_names(engine: AsyncEngine) -> None:
    """A batch killed between spooling and its commit leaves a file no row names: a sweep
    removes it once it is a day old, never one a batch on its way to its commit may still
    name."""
    spool = corpus.spool_of(engine)
    assert spool is not None
    orphan, fresh = spool.write([sha1("killed"), sha1("committing")])
    day_old = time.time() - corpus.ORPHAN_SECONDS - 60
    os.utime(spool.directory / orphan, (day_old, day_old))
    await _stage(engine, ["staged"])
    named = next(p for p in spool.directory.iterdir() if p.name not in (orphan, fresh))
    os.utime(named, (day_old, day_old))  # as old, but a committed row names it
    assert await corpus.sweep_spool(engine) == 1
    assert sorted(p.name for p in spool.directory.iterdir()) == sorted([fresh, named.name])
    assert await corpus.compact(engine) == 1
    assert await _corpus(engine) == {sha1("staged"): 1}
    assert [p.name for p in spool.directory.iterdir()] == [fresh]


@only_sqlite
async def test_the_api_sweeps_the_spool_as_it_starts(
    engine: AsyncEngine, settings: Settings
) -> None:
    spool = corpus.spool_of(engine)
    assert spool is not None
    (orphan,) = spool.write([sha1("killed")])
    day_old = time.time() - corpus.ORPHAN_SECONDS - 60
    os.utime(spool.directory / orphan, (day_old, day_old))
    async with api_client(settings, engine):
        await eventually(
            lambda: not (spool.directory / orphan).exists(), within=10, what="the API's sweep"
        )


async def test_the_set_based_fold_leaves_the_table_the_per_digest_upserts_left(
    engine: AsyncEngine, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential: the fold (one set-based statement per transaction) against the old write
    path (one upsert per digest, :func:`corpus.add_to_corpus`) fed by an independent tally, on
    the same staged input and corpus: repeats within and across rows, digests with trailing
    zero bytes and a shared /range prefix, sums reaching and passing the cap, rows already in
    the corpus, more rows than one fold takes and (beside SQLite) a lost spool file."""
    monkeypatch.setattr(corpus, "STAGE_ROW_DIGESTS", 7)
    monkeypatch.setattr(corpus, "ROWS_PER_FOLD", 2)
    zeros, tail = b"\x00" * 20, b"\xab\xcd\xe0" + b"\x00" * 17
    near = b"\xab\xcd\xe0" + b"\x00" * 16 + b"\x01"  # same 5-hex prefix as ``tail``
    common = [sha1(f"pw{n % 13}") for n in range(60)]
    batches = [
        [zeros, tail, near, zeros, *common[:20]],
        [*common[20:45], *[sha1("capped")] * 3],
        [sha1("lost")] * 7,  # exactly one staged row: its spool file goes missing below
        [*common[45:], sha1("full"), tail, tail],
    ]
    existing = {
        sha1("capped"): corpus.MAX_COUNT - 1,
        sha1("full"): corpus.MAX_COUNT,
        sha1("pw3"): 40,
        tail: 2,
        sha1("untouched"): 9,
    }

    async def stage_all() -> None:
        async with engine.begin() as conn:
            await conn.execute(delete(LeakedPassword))
        await add_leaked(engine, existing)
        for batch in batches:
            async with engine.begin() as conn:
                await corpus.stage(conn, b"".join(batch))
        async with engine.connect() as conn:
            assert (
                await conn.execute(select(func.count()).select_from(CorpusPending))
            ).scalar() > (corpus.ROWS_PER_FOLD)

    lost = 0
    await stage_all()
    spool = corpus.spool_of(engine)
    if backend == "sqlite":
        assert spool is not None
        (gone,) = [
            path
            for path in spool.directory.iterdir()
            if path.read_bytes() == sha1("lost") * 7  # the "lost" batch's one row
        ]
        gone.unlink()
        lost = 7
    staged = sum(len(batch) for batch in batches)
    assert await corpus.compact(engine) == staged - lost
    folded = await _corpus(engine)

    await stage_all()
    async with engine.begin() as conn:
        await conn.execute(delete(CorpusPending))
        counted = collections.Counter(d for batch in batches for d in batch)
        if lost:
            del counted[sha1("lost")]
        await corpus.add_to_corpus(conn, sorted(counted.items()))
    assert folded == await _corpus(engine)
    assert folded[sha1("capped")] == folded[sha1("full")] == corpus.MAX_COUNT
    assert folded[tail] == 5 and folded[zeros] == 2 and folded[sha1("pw3")] == 40 + 5
    assert (sha1("lost") in folded) is (backend != "sqlite")


async def _range(engine: AsyncEngine, digest: bytes) -> dict[bytes, int]:
    """What /range serves for the 5-hex prefix of ``digest``."""
    low, high = ranges.key_bounds(digest.hex()[:5])
    async with engine.connect() as conn:
        return dict(await corpus_segments.corpus_range(conn, low, high))


async def _segment_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(CorpusSegment))).scalar_one()


async def test_folded_digests_are_served_before_they_settle(engine: AsyncEngine) -> None:
    """A fold writes sorted segments, which /range reads beside the table (sums across
    several folds and the table, capped); settling moves them into the table and /range
    serves the same."""
    near = b"\xab\xcd\xe0" + b"\x00" * 17  # a trailing-zero digest sharing a prefix
    other = b"\xab\xcd\xef" + b"\xff" * 17  # the same prefix's last digest
    outside = b"\xab\xcd\xf0" + b"\x00" * 17  # the next prefix: never served with them
    await add_leaked(engine, {near: 4, sha1("capped"): corpus.MAX_COUNT - 1})
    for batch in ([near, other, near, outside], [other, sha1("capped"), sha1("capped")]):
        async with engine.begin() as conn:
            await corpus.stage(conn, b"".join(batch))
        assert await corpus.compact(engine, settle=False) == len(batch)
    assert await _corpus(engine) == {near: 4, sha1("capped"): corpus.MAX_COUNT - 1}
    assert await _segment_rows(engine) == 3  # the first fold all in segment abc, the next two
    async with engine.connect() as conn:
        assert await corpus_segments.waiting_records(conn) == 5
        backlog = await health_queries.corpus_backlog(conn)  # /health and /metrics show it
        assert (backlog.digests, backlog.unsettled_records) == (0, 5)
    served = {near: 6, other: 2}
    assert await _range(engine, near) == served
    assert await _range(engine, outside) == {outside: 1}
    assert await _range(engine, sha1("capped")) == {sha1("capped"): corpus.MAX_COUNT}

    assert await corpus.settle_all(engine) == 4  # distinct digests written to the table
    assert await _segment_rows(engine) == 0
    assert await _range(engine, near) == served
    assert await _corpus(engine) == {
        near: 6,
        other: 2,
        outside: 1,
        sha1("capped"): corpus.MAX_COUNT,
    }
    assert await corpus.settle_all(engine) == 0


async def test_two_settlers_settle_every_segment_once(database_url: str) -> None:
    digests = [sha1(f"pw{n % 5000}") for n in range(20_000)]
    async with db.open_engine(database_url) as one, db.open_engine(database_url) as two:
        for start in range(0, len(digests), 4000):  # five folds, each in every slice
            async with one.begin() as conn:
                await corpus.stage(conn, b"".join(digests[start : start + 4000]))
            await corpus.compact(one, settle=False)
        settled = await asyncio.gather(corpus.settle_all(one), corpus.settle_all(two))
        assert sum(settled) == 5000  # the five folds merged: 5,000 distinct digests
        assert await _corpus(one) == dict.fromkeys(set(digests), 4)
        assert await _segment_rows(one) == 0


async def test_the_api_settles_what_it_folded(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranges, "COMPACT_EVERY_S", 0.05)
    async with api_client(settings, engine):
        await _stage(engine, ["Kaede%31"] * 3)

        async def settled() -> bool:
            return await _corpus(engine) == {sha1("Kaede%31"): 3}

        await eventually(settled, within=10, what="folded digests to settle")
        assert await _segment_rows(engine) == 0


@only_postgres  # SQLite's segments go by INSERT
async def test_segments_are_never_copied_outside_the_folds_transaction(
    engine: AsyncEngine,
) -> None:
    """COPY on a connection whose transaction has not started would commit by itself, apart
    from the deletion of the staged rows it stands for."""
    rows = corpus_segments.segment_rows(
        np.array([sha1("a")], dtype="S20"), np.array([1], dtype=np.int64)
    )
    async with engine.begin() as conn:
        with pytest.raises(RuntimeError, match="inside the fold's transaction"):
            await corpus_segments.write(conn, rows)
    async with engine.begin() as conn:
        await conn.execute(select(1))
        await corpus_segments.write(conn, rows)
    assert await _range(engine, sha1("a")) == {sha1("a"): 1}


@only_sqlite  # the spool lives beside SQLite
async def test_a_fold_killed_before_removing_its_spool_files_counts_them_once(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between a fold's commit and the removal of its spool files nothing names the files any
    more: a fold stopped there (a kill, a full disk) leaves orphans the sweep removes, and the
    next fold does not count them again."""
    await _stage(engine, ["Tsubaki@88", "Tsubaki@88"], ["Ume#2024"])
    spool = corpus.spool_of(engine)
    assert spool is not None

    def killed(self: corpus.Spool, names: object) -> None:
        raise OSError("killed between the commit and the removal")

    monkeypatch.setattr(corpus.Spool, "remove", killed)
    with pytest.raises(OSError, match="killed"):
        await corpus.compact(engine)
    monkeypatch.undo()
    assert len(list(spool.directory.iterdir())) == 2  # orphans now: no row names them
    assert await corpus.compact(engine) == 0
    assert await _range(engine, sha1("Tsubaki@88")) == {sha1("Tsubaki@88"): 2}
    async with engine.connect() as conn:
        assert await corpus.pending_digests(conn) == 0
    assert await corpus.sweep_spool(engine) == 0  # a day's grace: a batch may still commit
    day_old = time.time() - corpus.ORPHAN_SECONDS - 60
    for orphan in spool.directory.iterdir():
        os.utime(orphan, (day_old, day_old))
    assert await corpus.sweep_spool(engine) == 2
    assert await _corpus(engine) == {sha1("Tsubaki@88"): 2, sha1("Ume#2024"): 1}
