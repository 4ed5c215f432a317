"""The migrations produce exactly the models' schema, on every backend."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from exposure.store import db
from exposure.store.models import Base
from tests.conftest import TEST_PEPPER


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_equal_models(empty_database_url: str) -> None:
    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_upgrade_is_repeatable(empty_database_url: str) -> None:
    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        await db.check_ready(engine, bytes.fromhex(TEST_PEPPER))


async def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    from alembic import command

    def down(connection: Connection) -> None:
        config = db.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.begin() as conn:
            await conn.run_sync(down)
            remaining = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert remaining <= {"alembic_version"}
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []


def _migrate(connection: Connection, direction: str, revision: str) -> None:
    from alembic import command

    config = db.alembic_config()
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


async def test_rows_staged_before_the_spool_are_counted_and_folded(
    empty_database_url: str,
) -> None:
    """0007 gives rows staged under 0006 their digest count; the fold still reads them."""
    from exposure.store import corpus

    digests = hashlib.sha1(b"pw", usedforsecurity=False).digest() * 3
    async with db.open_engine(empty_database_url) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0006")
            await conn.execute(
                text("INSERT INTO corpus_pending (digests, staged_at) VALUES (:d, :t)"),
                {"d": digests, "t": datetime.now(UTC)},
            )
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            assert await corpus.pending_digests(conn) == 3
        assert await corpus.compact(engine) == 3


async def test_downgrade_refuses_to_drop_spooled_digests(tmp_path: Path) -> None:
    from exposure.store import corpus

    async with db.open_engine(f"sqlite+aiosqlite:///{tmp_path / 'spool.db'}") as engine:
        # At 0007 itself: SQLite runs DDL outside the transaction, so a later revision's
        # downgrade would already have run when 0007's guard refuses.
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER), revision="0007")
        async with engine.begin() as conn:
            await corpus.stage(conn, hashlib.sha1(b"pw", usedforsecurity=False).digest())
            # Down to 0007 first: pysqlite autocommits DDL, so a later revision's downgrade
            # would not roll back with 0007's refusal.
            await conn.run_sync(_migrate, "downgrade", "0007")
        with pytest.raises(RuntimeError, match="exposure corpus compact"):
            async with engine.begin() as conn:
                await conn.run_sync(_migrate, "downgrade", "0006")
        assert await corpus.compact(engine) == 1
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0006")


async def test_files_chunked_before_0008_keep_going_to_processed(empty_database_url: str) -> None:
    """0008 gives ranges registered by the drop folder before it their done folder."""
    from exposure.store import large_files

    async with db.open_engine(empty_database_url) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0007")
            for chunk_no in (0, 1):
                await conn.execute(
                    text(
                        "INSERT INTO ingest_chunks (file_key, path, file_bytes, chunk_no, "
                        "start_byte, end_byte, format, source, state, attempts, created_at) "
                        "VALUES ('k', '/srv/inbox/big.txt', 10, :n, 0, 9, 'combo', 'folder', "
                        "'pending', 0, :t)"
                    ),
                    {"n": chunk_no, "t": datetime.now(UTC)},
                )
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            progress = await large_files.progress(conn, "k")
    assert progress is not None and progress.chunks == 2
    assert progress.done_folder == "/srv/inbox/processed"


def test_the_schema_revision_the_code_checks_is_the_shipped_head() -> None:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    assert db.SCHEMA_REVISION == head


async def test_commands_refuse_an_outdated_schema_with_the_fix(empty_database_url: str) -> None:
    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER), revision="0007")
        with pytest.raises(db.SchemaOutdated, match=r"at revision 0007.*exposure db upgrade"):
            await db.check_ready(engine, bytes.fromhex(TEST_PEPPER))
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        assert await db.check_ready(engine, bytes.fromhex(TEST_PEPPER)) == db.SCHEMA_REVISION
