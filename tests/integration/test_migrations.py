"""The migrations produce exactly the models' schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
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
