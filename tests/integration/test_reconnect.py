"""Lost connections are told apart from real errors (on errors the drivers really raise), and
the retry helper retries only those, with backoff, within its patience."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.store import db, outbox
from exposure.store.reconnect import (
    Backoff,
    DatabaseUnavailable,
    describe,
    is_transient,
    retrying,
)
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, only_postgres, only_sqlite
from tests.integration.delivery_helpers import attempt_rows, seed


async def _terminate(pid: int) -> None:
    assert POSTGRES_URL
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


@only_postgres
async def test_a_session_ended_mid_statement_is_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        running = asyncio.ensure_future(conn.execute(text("SELECT pg_sleep(5)")))
        await asyncio.sleep(0.3)
        await _terminate(int(pid))
        with pytest.raises(DBAPIError) as caught:
            await running
    # Not an OperationalError (what the delivery loop used to catch, so it died): a plain
    # DBAPIError that SQLAlchemy marks as a lost connection.
    assert type(caught.value) is DBAPIError
    assert is_transient(caught.value)
    assert describe(caught.value).endswith(("08003", "57P01"))  # a class and a SQLSTATE
    # The pool hands out a fresh connection afterwards: the same engine works.
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1


@only_postgres
async def test_a_session_ended_between_statements_is_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        await conn.commit()
        await _terminate(int(pid))
        await asyncio.sleep(0.2)
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(text("SELECT 1"))
    assert is_transient(caught.value)


@only_postgres
async def test_real_errors_are_not_transient(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError) as syntax:
            await conn.execute(text("SELEC 1"))
    assert not is_transient(syntax.value)
    assert POSTGRES_URL
    missing = POSTGRES_URL.rsplit("/", 1)[0] + "/exposure_no_such_database"
    async with db.open_engine(missing) as nowhere:
        with pytest.raises(DBAPIError) as caught:
            async with nowhere.connect():
                pass
    assert not is_transient(caught.value)  # a configuration problem: a retry cannot help


async def test_a_refused_connection_is_transient() -> None:
    async with db.open_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none") as nowhere:
        with pytest.raises(OSError) as caught:
            async with nowhere.connect():
                pass
    assert is_transient(caught.value)
    assert not is_transient(OSError(28, "No space left on device"))
    assert not is_transient(ValueError("not a database error"))


@only_sqlite
async def test_a_locked_sqlite_database_is_transient(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held
    try:
        engine = db.create_engine(f"sqlite+aiosqlite:///{path}")

        @event.listens_for(engine.sync_engine, "connect")
        def short_wait(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=50")  # type: ignore[attr-defined]

        try:
            with pytest.raises(DBAPIError) as caught:
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
        finally:
            await engine.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert is_transient(caught.value)


async def test_retrying_retries_only_lost_connections() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError(104, "Connection reset by peer")
        return "done"

    quick = Backoff(base=0.01, cap=0.02, patience=5.0)
    assert await retrying(flaky, what="test", backoff=quick) == "done"
    assert calls == 3

    async def broken() -> None:
        raise ValueError("a bug, not a lost connection")

    with pytest.raises(ValueError):
        await retrying(broken, what="test", backoff=quick)


async def test_retrying_gives_up_after_its_patience_or_at_stop() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(DatabaseUnavailable) as caught:
        await retrying(down, what="counting", backoff=Backoff(base=0.01, cap=0.02, patience=0.2))
    assert calls > 2
    assert "counting" in str(caught.value) and "ConnectionRefusedError" in str(caught.value)

    stop = asyncio.Event()
    stop.set()
    calls = 0
    with pytest.raises(DatabaseUnavailable):
        await retrying(down, what="stopping", stop=stop, backoff=Backoff(patience=None))
    assert calls == 1  # a stop ends the retries at once


async def test_recording_attempts_again_after_a_lost_answer_writes_them_once(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    """A commit whose answer was lost (the connection dropped just after it) is retried by
    the sender: the retry finds its rows released and writes no second history line."""
    seed(database_url, tmp_path)
    now = utcnow()
    async with engine.begin() as conn:
        [event] = await outbox.claim_due(
            conn,
            owner="sender-a",
            now=now,
            due_by=now,
            lease_until=now + timedelta(minutes=5),
            limit=1,
        )
    record = outbox.AttemptRecord(
        outbox_id=event.id,
        attempt=1,
        attempted_at=now,
        status_code=200,
        latency_ms=3.0,
        outcome="delivered",
        error=None,
        state="delivered",
        next_attempt_at=now,
        delivered_at=now,
    )
    for again in (False, True):  # the first commit landed; the sender did not hear so
        async with engine.begin() as conn:
            await outbox.record_attempts(conn, "sender-a", [record], again=again)
    history = [a for a in await attempt_rows(engine) if a["event_id"] == event.event_id]
    assert [(a["attempt"], a["outcome"]) for a in history] == [(1, "delivered")]


@only_postgres
async def test_connections_notice_a_vanished_host(engine: AsyncEngine) -> None:
    """TCP keepalives and a user timeout on every PostgreSQL connection: a host that vanished
    without closing it (a failover, a partition) fails the statement within about a minute."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        sock = raw.driver_connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000
