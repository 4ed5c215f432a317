"""Corpus fold benchmark: staged leaked-password digests folded until ``/range`` serves them.

Stages N digests (default 10,000,000) as ingests do (calls of up to 1,000,000 digests, rows of
100,000, spool files beside SQLite), a share of them repeats of others (default 20%), over a
corpus that already holds some of them (default 10% of the distinct digests, a few at the cap)
and as many unrelated rows. Every run folds a fresh copy of the same staged database.

Baseline ``table``: the fold before corpus segments (0c0d2c1, copied below): a few staged rows
per transaction, tallied, then one set-based upsert into ``leaked_passwords``; ``/range``
serves a digest once that has committed. ``segments``: :func:`exposure.store.corpus.compact`
without settling, after which ``/range`` serves every digest; then ``settle``:
:func:`exposure.store.corpus.settle_all` on the same copy, which leaves the table the baseline
left (checked on the last round). The fold's rate (staged digests a second until ``/range``
serves them) is the figure the target (1,000,000 a second) is about; settling runs in the
background after it. ``/range`` look-ups of random prefixes are timed with the segments
unsettled and settled. Runs interleave, and the best of ``--rounds`` counts (another process
may share the cores).

    python bench/corpus_fold.py [--digests N] [--repeats 0.2] [--rounds 3] [--workdir DIR]

PostgreSQL is measured too when EXPOSURE_TEST_POSTGRES_URL is set (its databases are created
and dropped here).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import asyncpg
import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.password_range import key_bounds
from exposure.store import corpus, corpus_segments, db
from exposure.store.models import CorpusPending, LeakedPassword

PEPPER = bytes.fromhex("ab" * 32)
STAGE_CALL_DIGESTS = 1_000_000
TABLE_ROWS_PER_FOLD = 3  # what the fold into the table took per transaction
RANGE_LOOKUPS = 1000
TARGET_DIGESTS_PER_S = 1_000_000


async def table_fold(engine: AsyncEngine) -> int:
    """The fold before corpus segments, kept as the baseline: take a few staged rows
    (``DELETE ... RETURNING``), tally them, upsert the tally into ``leaked_passwords``."""
    folded = 0
    spool = corpus.spool_of(engine)
    while True:
        async with engine.begin() as conn:
            oldest = select(CorpusPending.id).order_by(CorpusPending.id).limit(TABLE_ROWS_PER_FOLD)
            taken = (
                await conn.execute(
                    delete(CorpusPending)
                    .where(CorpusPending.id.in_(oldest))
                    .returning(CorpusPending.digests, CorpusPending.spool_file)
                )
            ).all()
            if not taken:
                break
            parts = [
                bytes(digests)
                if digests is not None
                else (spool.directory / str(name)).read_bytes()  # type: ignore[union-attr]
                for digests, name in taken
            ]
            digests = b"".join(parts)
            values, counts = np.unique(
                np.frombuffer(digests, dtype=f"S{corpus.DIGEST_BYTES}"), return_counts=True
            )
            await corpus.upsert_counts(conn, values.tobytes(), counts.tolist())
            folded += len(digests) // corpus.DIGEST_BYTES
        if spool is not None:
            spool.remove(name for _, name in taken if name is not None)
    return folded


def workload(digests: int, repeats: float) -> tuple[bytes, list[tuple[bytes, int]]]:
    """The staged digests (shuffled, ``repeats`` of them repeats) and the corpus rows already
    there (sorted): a tenth of the staged distinct digests, a few at the cap, and as many
    unrelated ones."""
    rng = np.random.default_rng(2026)
    distinct = max(1, int(digests * (1 - repeats)))
    fresh = rng.integers(0, 256, size=(distinct, corpus.DIGEST_BYTES), dtype=np.uint8)
    again = fresh[rng.integers(0, distinct, size=digests - distinct)]
    staged = np.concatenate([fresh, again])
    rng.shuffle(staged)
    known = distinct // 10
    unrelated = rng.integers(0, 256, size=(known, corpus.DIGEST_BYTES), dtype=np.uint8)
    existing = np.concatenate([fresh[:known], unrelated])
    counts = rng.integers(1, 1000, size=len(existing)).tolist()
    counts[: min(100, len(counts))] = [corpus.MAX_COUNT - 1] * min(100, len(counts))
    rows = sorted(zip((row.tobytes() for row in existing), counts, strict=True))
    return staged.tobytes(), rows


async def prepare(url: str, staged: bytes, existing: list[tuple[bytes, int]]) -> None:
    async with db.open_engine(url) as engine:
        await db.upgrade(engine, PEPPER)
        async with engine.begin() as conn:
            await corpus.add_to_corpus(conn, existing)
        step = STAGE_CALL_DIGESTS * corpus.DIGEST_BYTES
        for start in range(0, len(staged), step):
            async with engine.begin() as conn:
                await corpus.stage(conn, staged[start : start + step])


async def range_ms(engine: AsyncEngine, prefixes: list[str]) -> float:
    """Milliseconds per ``/range`` read of the corpus, over ``prefixes``."""
    async with engine.connect() as conn:
        started = time.perf_counter()
        for prefix in prefixes:
            await corpus_segments.corpus_range(conn, *key_bounds(prefix))
        return (time.perf_counter() - started) * 1000 / len(prefixes)


async def table_digest(engine: AsyncEngine) -> str:
    table = hashlib.sha256()
    async with engine.connect() as conn:
        rows = await conn.stream(
            select(LeakedPassword.sha1, LeakedPassword.count).order_by(LeakedPassword.sha1)
        )
        async for sha1, count in rows:
            table.update(bytes(sha1) + count.to_bytes(4, "big"))
    return table.hexdigest()


# One run's figures (seconds, milliseconds), and a digest of the table it left ("" unless
# checked).
Run = tuple[dict[str, float], str]


async def run_table(url: str, digests: int, *, check: bool) -> Run:
    async with db.open_engine(url) as engine:
        started = time.perf_counter()
        assert await table_fold(engine) == digests
        seconds = time.perf_counter() - started
        print(f"{url.split(':')[0]} table: {digests / seconds:,.0f} digests/s", file=sys.stderr)
        return {"table_fold": seconds}, await table_digest(engine) if check else ""


async def run_segments(url: str, digests: int, prefixes: list[str], *, check: bool) -> Run:
    async with db.open_engine(url) as engine:
        started = time.perf_counter()
        assert await corpus.compact(engine, settle=False) == digests
        fold = time.perf_counter() - started
        unsettled_ms = await range_ms(engine, prefixes)
        started = time.perf_counter()
        await corpus.settle_all(engine)
        settle = time.perf_counter() - started
        settled_ms = await range_ms(engine, prefixes)
        print(
            f"{url.split(':')[0]} segments: {digests / fold:,.0f} digests/s served, "
            f"settled at {digests / settle:,.0f}/s",
            file=sys.stderr,
        )
        figures = {
            "segments_fold": fold,
            "segments_settle": settle,
            "range_ms_unsettled": unsettled_ms,
            "range_ms_settled": settled_ms,
        }
        return figures, await table_digest(engine) if check else ""


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _copy_sqlite(template: Path, name: str) -> Path:
    """A fresh copy of the staged SQLite database and its spool, for one run."""
    _remove(template.parent.glob("run-*"))
    run = template.parent / f"run-{name}.db"
    shutil.copyfile(template, run)
    shutil.copytree(Path(f"{template}{corpus.Spool.SUFFIX}"), Path(f"{run}{corpus.Spool.SUFFIX}"))
    return run


async def best_of(
    rounds: int, digests: int, fresh_copy: Callable[[str], Awaitable[str]]
) -> dict[str, object]:
    """Both folds ``rounds`` times, interleaved, each on ``fresh_copy(name)`` (a database
    URL holding the staged input); the best run of each figure, the tables checked alike."""
    prefixes = [f"{random.Random(n).getrandbits(20):05x}" for n in range(RANGE_LOOKUPS)]
    best: dict[str, float] = {}
    tables: set[str] = set()
    for round_ in range(rounds):
        check = round_ == rounds - 1  # reading ten million rows back takes a while
        runs = (
            await run_table(await fresh_copy("table"), digests, check=check),
            await run_segments(await fresh_copy("segments"), digests, prefixes, check=check),
        )
        for figures, table in runs:
            if table:
                tables.add(table)
            for name, value in figures.items():
                best[name] = min(best.get(name, value), value)
    assert len(tables) == 1, "the table fold and settled segments left different tables"
    served = digests / best["segments_fold"]
    return {
        "digests_per_s_until_served": {
            "table (baseline)": round(digests / best["table_fold"]),
            "segments": round(served),
        },
        "speedup": round(best["table_fold"] / best["segments_fold"], 2),
        "settle_digests_per_s": round(digests / best["segments_settle"]),
        "best_seconds": {name: round(value, 2) for name, value in best.items() if "ms" not in name},
        "range_ms_per_prefix": {
            "unsettled": round(best["range_ms_unsettled"], 3),
            "settled": round(best["range_ms_settled"], 3),
        },
        "target_digests_per_s": TARGET_DIGESTS_PER_S,
        "meets_target": served >= TARGET_DIGESTS_PER_S,
        "same_table": True,
    }


async def sqlite_case(
    work: Path, staged: bytes, existing: list[tuple[bytes, int]], rounds: int, digests: int
) -> dict[str, object]:
    template = work / "template.db"
    # A --workdir kept from an earlier run: stage afresh.
    await asyncio.to_thread(lambda: _remove(work.glob("template.db*")))
    await prepare(f"sqlite+aiosqlite:///{template}", staged, existing)

    async def fresh_copy(name: str) -> str:
        return f"sqlite+aiosqlite:///{await asyncio.to_thread(_copy_sqlite, template, name)}"

    return await best_of(rounds, digests, fresh_copy)


async def postgres_case(
    url: str, staged: bytes, existing: list[tuple[bytes, int]], rounds: int, digests: int
) -> dict[str, object]:
    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    base = url.rsplit("/", 1)[0]
    template = f"corpus_fold_{uuid.uuid4().hex[:8]}"
    created = [template]

    async def fresh_copy(name: str) -> str:
        run = f"{template}_{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{run}"')
        await admin.execute(f'CREATE DATABASE "{run}" TEMPLATE "{template}"')
        created.append(run)
        return f"{base}/{run}"

    try:
        await admin.execute(f'CREATE DATABASE "{template}"')
        await prepare(f"{base}/{template}", staged, existing)
        return await best_of(rounds, digests, fresh_copy)
    finally:
        for name in dict.fromkeys(reversed(created)):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digests", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument(
        "--rows-per-fold",
        type=int,
        default=corpus.ROWS_PER_FOLD,
        help="staged rows each fold into segments takes (the table fold keeps its 3)",
    )
    args = parser.parse_args()
    corpus.ROWS_PER_FOLD = args.rows_per_fold
    staged, existing = workload(args.digests, args.repeats)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="corpus-fold-"))
    os.makedirs(work, exist_ok=True)
    results: dict[str, object] = {
        "digests": args.digests,
        "repeats": args.repeats,
        "existing_rows": len(existing),
        "rows_per_fold": {"table": TABLE_ROWS_PER_FOLD, "segments": args.rows_per_fold},
    }
    try:
        results["sqlite"] = await sqlite_case(work, staged, existing, args.rounds, args.digests)
        if url := os.environ.get("EXPOSURE_TEST_POSTGRES_URL"):
            results["postgresql"] = await postgres_case(
                url, staged, existing, args.rounds, args.digests
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
