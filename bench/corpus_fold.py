"""Corpus fold benchmark: staged leaked-password digests folded into ``leaked_passwords``.

Stages N digests (default 10,000,000) as ingests do (calls of up to 1,000,000 digests, rows of
100,000, spool files beside SQLite), a share of them repeats of others (default 20%), over a
corpus that already holds some of them (default 10% of the distinct digests, a few at the cap)
and as many unrelated rows. Every run folds a fresh copy of the same staged database, so old
and new see the same input; each fold's resulting table is checked to be the same.

Baseline ``old``: the fold as it was before the set-based write (a copy below: numpy unique
over opaque 20-byte records, then one ``INSERT ... ON CONFLICT`` per distinct digest through
executemany). ``new``: :func:`exposure.store.corpus.compact`. Runs interleave old, new, old,
new... and the best of ``--rounds`` counts (another process may share the cores).

    python bench/corpus_fold.py [--digests N] [--repeats 0.2] [--rounds 3] [--workdir DIR]

PostgreSQL is measured too when EXPOSURE_TEST_POSTGRES_URL is set (its databases are created
and dropped here).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store import corpus, db
from exposure.store.models import LeakedPassword

PEPPER = bytes.fromhex("ab" * 32)
STAGE_CALL_DIGESTS = 1_000_000
OLD_ROWS_PER_FOLD = 3  # what the old fold took per transaction


async def old_compact(engine: AsyncEngine) -> int:
    """The fold before the set-based write, kept as the baseline: the same take of staged
    rows (:func:`corpus.take_staged`), then one upsert per distinct digest."""
    folded = 0
    spool = corpus.spool_of(engine)
    opaque = np.dtype(f"V{corpus.DIGEST_BYTES}")
    while True:
        async with engine.begin() as conn:
            taken = await corpus.take_staged(conn, spool, OLD_ROWS_PER_FOLD)
            if taken is None:
                break
            digests, spooled = taken
            if digests:
                values, counts = np.unique(np.frombuffer(digests, dtype=opaque), return_counts=True)
                await corpus.add_to_corpus(
                    conn, zip((v.tobytes() for v in values), counts.tolist(), strict=True)
                )
                folded += len(digests) // corpus.DIGEST_BYTES
        if spooled and spool is not None:
            await asyncio.to_thread(spool.remove, spooled)
    return folded


FOLDS: dict[str, Callable[[AsyncEngine], Awaitable[int]]] = {
    "old": old_compact,
    "new": corpus.compact,
}


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


async def fold(url: str, name: str, digests: int, *, check: bool) -> tuple[float, str]:
    """Fold everything staged at ``url`` with fold ``name``: the seconds it took and, with
    ``check`` (the last round: reading ten million rows back takes a while), a digest of the
    resulting table."""
    async with db.open_engine(url) as engine:
        started = time.perf_counter()
        folded = await FOLDS[name](engine)
        seconds = time.perf_counter() - started
        assert folded == digests, (name, folded, digests)
        print(f"{url.split(':')[0]} {name}: {digests / seconds:,.0f} digests/s", file=sys.stderr)
        table = hashlib.sha256()
        if not check:
            return seconds, ""
        async with engine.connect() as conn:
            rows = await conn.stream(
                select(LeakedPassword.sha1, LeakedPassword.count).order_by(LeakedPassword.sha1)
            )
            async for sha1, count in rows:
                table.update(bytes(sha1) + count.to_bytes(4, "big"))
    return seconds, table.hexdigest()


def _copy_sqlite(template: Path, name: str) -> Path:
    """A fresh copy of the staged SQLite database and its spool, for one run."""
    for path in template.parent.glob("run-*"):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    run = template.parent / f"run-{name}.db"
    shutil.copyfile(template, run)
    shutil.copytree(Path(f"{template}{corpus.Spool.SUFFIX}"), Path(f"{run}{corpus.Spool.SUFFIX}"))
    return run


async def best_of(
    rounds: int, digests: int, fresh_copy: Callable[[str], Awaitable[str]]
) -> dict[str, object]:
    """Every fold ``rounds`` times, interleaved, each on ``fresh_copy(name)`` (a database URL
    holding the staged input); the best run of each, and the tables checked alike."""
    best: dict[str, float] = {}
    tables: set[str] = set()
    for round_ in range(rounds):
        for name in FOLDS:
            url = await fresh_copy(name)
            seconds, table = await fold(url, name, digests, check=round_ == rounds - 1)
            best[name] = min(best.get(name, seconds), seconds)
            if table:
                tables.add(table)
    return _figures(best, tables, digests)


async def sqlite_case(
    work: Path, staged: bytes, existing: list[tuple[bytes, int]], rounds: int, digests: int
) -> dict[str, object]:
    template = work / "template.db"
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


def _figures(best: dict[str, float], tables: set[str], digests: int) -> dict[str, object]:
    assert len(tables) == 1, "old and new folds left different tables"
    rates = {name: round(digests / seconds) for name, seconds in best.items()}
    return {
        "digests_per_s": rates,
        "best_seconds": {name: round(seconds, 2) for name, seconds in best.items()},
        "speedup": round(rates["new"] / rates["old"], 2),
        "same_table": True,
    }


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
        help="staged rows each transaction of the new fold takes (the old keeps its 3)",
    )
    args = parser.parse_args()
    FOLDS["new"] = functools.partial(corpus.compact, rows=args.rows_per_fold)
    staged, existing = workload(args.digests, args.repeats)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="corpus-fold-"))
    os.makedirs(work, exist_ok=True)
    results: dict[str, object] = {
        "digests": args.digests,
        "repeats": args.repeats,
        "existing_rows": len(existing),
        "rows_per_fold": {"old": OLD_ROWS_PER_FOLD, "new": args.rows_per_fold},
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
