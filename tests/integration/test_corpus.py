"""The staged corpus: ingestion stages digests, compaction folds each staged row exactly once
(also with two compactors racing), and the API folds in the background so /range sees them."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import ranges
from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store import corpus, db
from exposure.store.models import CorpusPending, LeakedPassword
from tests.integration.test_api_support import add_leaked, api_client, bearer, make_token


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
        folded = await asyncio.gather(corpus.compact(one), corpus.compact(two))
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
        for _ in range(200):
            response = await client.get(f"/range/{digest[:5]}", headers=bearer(token))
            assert response.status == 200
            if f"{digest[5:]}:2" in (await response.text()).split("\r\n"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("staged digests never reached /range")


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
        rows = await conn.execute(select(func.length(CorpusPending.digests)))
        assert sorted(length for (length,) in rows) == [20, 40, 40]
        assert await corpus.pending_digests(conn) == 5
    assert await corpus.compact(engine) == 5
    assert await _corpus(engine) == {sha1("a"): 3, sha1("b"): 1, sha1("c"): 1}
