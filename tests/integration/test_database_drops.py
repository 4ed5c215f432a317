"""The daemon rides through lost database connections (docs/decisions/database-reconnect.md).

Two real ``exposure run`` processes share one PostgreSQL database; while they ingest a dump
(a large one, split into chunks both claim, and small ones) and deliver its webhooks to a real
receiver, every one of their database sessions is terminated several times
(``pg_terminate_backend``, what a failover or a restart does to them). Both must keep running,
the dumps must finish, every event must reach the receiver, and the database must hold exactly
what an uninterrupted run of the same dumps writes; SIGTERM then stops each within its grace
period.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store import db
from exposure.store.models import Exposure, IngestChunk, OutboxEvent, Sighting
from tests.cli import run_cli
from tests.conftest import POSTGRES_URL, _admin, _asyncpg_dsn, _with_database, only_postgres
from tests.integration.receiver import Receiver, Reply, serving
from tests.integration.test_daemon import daemon_env, drop, start
from tests.leakgen import CURRENT, HASHER, HEADER
from tests.waiting import eventually

CUSTOMERS = 120
FILLER_LINES = 40_000
CHUNK_BYTES = 48 << 10
GRACE_SECONDS = 20


def _customers() -> str:
    phc = HASHER.hash(CURRENT)
    rows = [f"F{n:04d},fault.{n:04d}@example.jp,FLT{n:05d},,{phc}" for n in range(CUSTOMERS)]
    return HEADER + "\n".join(rows) + "\n"


def _dumps() -> dict[str, str]:
    """A large dump (chunked) holding most customers' live passwords among filler lines, and
    two small ones (ingested whole by the folder connector) holding the rest."""
    big = [f"filler.{n:06d}@example.org:Filler-{n}" for n in range(FILLER_LINES)]
    step = FILLER_LINES // (CUSTOMERS - 20)
    for n in range(CUSTOMERS - 20):
        big.insert(n * step + n, f"fault.{n:04d}@example.jp:{CURRENT}")
    small = [f"FLT{n:05d}:{CURRENT}" for n in range(CUSTOMERS - 20, CUSTOMERS)]
    return {
        "big.txt": "\n".join(big) + "\n",
        "small1.txt": "\n".join(small[:10]) + "\n",
        "small2.txt": "\n".join(small[10:]) + "\n",
    }


async def _outcome(engine: AsyncEngine) -> tuple[Counter[tuple[object, ...]], ...]:
    """What an ingest wrote, independent of ids and times: exposures, sightings, events."""
    async with engine.connect() as conn:
        exposures = Counter(
            tuple(row)
            for row in await conn.execute(
                select(
                    Exposure.customer_id,
                    Exposure.identifier_kind,
                    Exposure.password_status,
                    Exposure.action,
                    Exposure.occurrences,
                    Exposure.state,
                )
            )
        )
        sightings = Counter(
            tuple(row)
            for row in await conn.execute(
                select(Exposure.customer_id, Sighting.file, Sighting.line_no).join(
                    Exposure, Exposure.exposure_id == Sighting.exposure_id
                )
            )
        )
        events = Counter(tuple(row) for row in await conn.execute(select(OutboxEvent.event_type)))
    return exposures, sightings, events


async def _terminate(database: str) -> int:
    """End every session on ``database`` but our own; how many there were."""
    assert POSTGRES_URL
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        ended = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return len(ended)


async def _chunks_started(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        states = (await conn.execute(select(IngestChunk.state))).scalars().all()
    return any(state != "pending" for state in states)


async def _all_delivered(engine: AsyncEngine, expected: int) -> bool:
    async with engine.connect() as conn:
        states = (await conn.execute(select(OutboxEvent.state))).scalars().all()
    return len(states) == expected and set(states) == {"delivered"}


def _stop_within(process: subprocess.Popen[bytes], seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=seconds + 5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = -9
    return code, time.monotonic() - started


@only_postgres
@pytest.mark.timeout(420)
async def test_two_daemons_ride_through_terminated_connections(
    database_url: str, engine: AsyncEngine, tmp_path: Path, postgres_template: str
) -> None:
    dumps = _dumps()
    (tmp_path / "customers.csv").write_text(_customers())
    database = database_url.rsplit("/", 1)[1]

    # The reference: the same dumps, uninterrupted, in a database of their own.
    reference_name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{reference_name}" TEMPLATE "{postgres_template}"')
    assert POSTGRES_URL
    reference_url = _with_database(POSTGRES_URL, reference_name)
    try:
        quiet = tmp_path / "quiet"
        (quiet / "inbox").mkdir(parents=True)
        for name, text in dumps.items():
            (quiet / "inbox" / name).write_text(text)
        env = daemon_env(
            reference_url,
            quiet / "inbox",
            "",
            EXPOSURE_FOLDER_CHUNK_BYTES=str(CHUNK_BYTES),
            EXPOSURE_INGEST_BATCH_EVENTS="400",
        )
        env.pop("EXPOSURE_WEBHOOK_URL")
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=quiet)
        run_cli("connectors", "run", "folder", "--once", env=env, cwd=quiet)
        async with db.open_engine(reference_url) as reference_engine:
            expected = await _outcome(reference_engine)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{reference_name}" WITH (FORCE)')
    events = sum(expected[2].values())
    assert events == CUSTOMERS  # one force_reset per customer

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    receiver = Receiver(plan=lambda _id, _n: Reply(200, delay=0.2))
    async with serving(receiver):
        env = daemon_env(
            database_url,
            inbox,
            receiver.url,
            EXPOSURE_FOLDER_CHUNK_BYTES=str(CHUNK_BYTES),
            EXPOSURE_INGEST_BATCH_EVENTS="400",
            EXPOSURE_STOP_GRACE_SECONDS=str(GRACE_SECONDS),
        )
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        replicas = [start(env, tmp_path, tmp_path / f"replica{i}.log") for i in range(2)]
        try:
            for name, text in dumps.items():
                drop(inbox, name, text)
            await eventually(lambda: _chunks_started(engine), within=60, what="chunks")
            terminated = 0
            for _ in range(5):  # during the ingest
                terminated += await _terminate(database)
                await asyncio.sleep(0.5)
            await eventually(lambda: len(receiver.seen) >= 10, within=120, what="deliveries")
            for _ in range(5):  # and during the deliveries
                terminated += await _terminate(database)
                await asyncio.sleep(0.3)
            assert terminated >= 10
            processed = inbox / "processed"
            await eventually(
                lambda: sorted(p.name for p in processed.iterdir()) == sorted(dumps),
                within=180,
                what="every dump processed",
            )
            await eventually(
                lambda: _all_delivered(engine, events), within=180, what="every event delivered"
            )
            assert [process.poll() for process in replicas] == [None, None]  # both still up
        finally:
            stopped = [_stop_within(process, GRACE_SECONDS) for process in replicas]
    assert all(seconds <= GRACE_SECONDS for _, seconds in stopped), stopped
    assert [code for code, _ in stopped] == [0, 0], stopped
    assert await _outcome(engine) == expected
    # At least once: every event reached the receiver, verified.
    delivered_ids = {seen.webhook_id for seen in receiver.verified()}
    async with engine.connect() as conn:
        event_ids = set((await conn.execute(select(OutboxEvent.event_id))).scalars())
    assert event_ids <= delivered_ids and len(event_ids) == events
    shutil.rmtree(tmp_path / "quiet", ignore_errors=True)
