"""The migrations produce exactly the models' schema, on every backend."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from exposure.store import db
from exposure.store.models import Base
from tests.conftest import TEST_PEPPER, only_postgres


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
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))  # the fold of today's code
        assert await corpus.compact(engine) == 1
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0006")


async def test_downgrade_refuses_to_drop_unsettled_segments(empty_database_url: str) -> None:
    from exposure.store import corpus

    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.begin() as conn:
            await corpus.stage(conn, hashlib.sha1(b"pw", usedforsecurity=False).digest())
        assert await corpus.compact(engine, settle=False) == 1
        with pytest.raises(RuntimeError, match="exposure corpus compact"):
            async with engine.begin() as conn:
                await conn.run_sync(_migrate, "downgrade", "0012")
        assert await corpus.settle_all(engine) == 1
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0012")
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "corpus_segments" not in tables


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


def _exposure_row(
    n: int, customer: str, action: str, state: str, at: datetime
) -> dict[str, object]:
    severity = {"force_reset": "critical", "notify": "medium", "none": "low"}[action]
    return {
        "exposure_id": f"00000000-0000-4000-8000-{n:012d}",
        "customer_id": customer,
        "identifier_kind": "email",
        "password_fp": bytes([n]) * 32,
        "site_domain": "",
        "match_strength": "strict",
        "password_status": "live" if action == "force_reset" else "stale",
        "action": action,
        "severity": severity,
        "leak_type": "combo",
        "has_pin": False,
        "reason": "r",
        "recommended_actions": '["reset_password"]',
        "source": "s",
        "identifier_hint": "c***@example.jp",
        "state": state,
        "first_seen": at,
        "last_seen": at,
        "occurrences": 1,
        "decided_at": at,
        "resolution": None if state == "open" else state,
        "resolved_at": None if state == "open" else at + timedelta(hours=2),
        "resolved_by": None if state == "open" else "reset-service",
    }


async def test_0011_turns_exposures_into_cases_and_back(empty_database_url: str) -> None:
    """Open exposures become one open case per customer (their events announced), resolved
    ones keep their resolution in a resolved case, events name their case; and back."""
    from sqlalchemy import insert, select

    from exposure.store.models import Case, Customer, Exposure, OutboxEvent

    t0 = datetime(2025, 5, 12, 1, 0, tzinfo=UTC)
    rows = [
        _exposure_row(1, "C1", "notify", "open", t0),
        _exposure_row(2, "C1", "force_reset", "open", t0 + timedelta(hours=1)),
        _exposure_row(3, "C1", "force_reset", "reset_completed", t0 - timedelta(days=3)),
        _exposure_row(4, "C2", "none", "open", t0),
        _exposure_row(5, "C2", "notify", "dismissed", t0),
    ]
    customers = Customer.__table__.c
    async with db.open_engine(empty_database_url) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "upgrade", "0010")
            for cid in ("C1", "C2"):
                await conn.execute(
                    text(
                        "INSERT INTO customers (customer_id, created_at, updated_at) "
                        "VALUES (:c, :t, :t)"
                    ),
                    {"c": cid, "t": t0},
                )
            await conn.execute(insert(Exposure.__table__), rows)
            for n in (1, 2, 3, 5):
                await conn.execute(
                    insert(OutboxEvent.__table__).values(
                        event_id=f"msg_{n}",
                        exposure_id=rows[n - 1]["exposure_id"],
                        event_type=f"exposure.{rows[n - 1]['action']}",
                        payload="{}",
                        state="delivered",
                        attempts=1,
                        created_at=t0,
                        next_attempt_at=t0,
                    )
                )
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            cases = {c.case_id: c for c in (await conn.execute(select(Case))).all()}
            case_of = dict(
                (await conn.execute(select(Exposure.exposure_id, Exposure.case_id))).all()
            )
            event_case = dict(
                (await conn.execute(select(OutboxEvent.event_id, OutboxEvent.case_id))).all()
            )
            superseded = (await conn.execute(select(customers.password_superseded_at))).all()
        ids = [str(r["exposure_id"]) for r in rows]
        assert all(case_of[i] in cases for i in ids)
        open_c1 = cases[case_of[ids[0]]]
        assert case_of[ids[1]] == open_c1.case_id
        assert (open_c1.customer_id, open_c1.state, open_c1.action, open_c1.severity) == (
            "C1",
            "open",
            "force_reset",
            "critical",
        )
        assert open_c1.announced_action == "force_reset"
        assert open_c1.force_reset_at == t0 + timedelta(hours=1)
        resolved = cases[case_of[ids[2]]]
        assert (resolved.state, resolved.resolution, resolved.resolved_by) == (
            "resolved",
            "reset_completed",
            "reset-service",
        )
        assert resolved.resolved_at == t0 - timedelta(days=3) + timedelta(hours=2)
        open_c2 = cases[case_of[ids[3]]]
        assert (open_c2.state, open_c2.action, open_c2.announced_action) == ("open", "none", None)
        assert cases[case_of[ids[4]]].resolution == "dismissed"
        assert len(cases) == 4
        assert sum(c.state == "open" for c in cases.values()) == 2
        assert event_case == {f"msg_{n}": case_of[ids[n - 1]] for n in (1, 2, 3, 5)}
        assert superseded == [(None,), (None,)]

        async with engine.begin() as conn:
            await conn.run_sync(_migrate, "downgrade", "0010")
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("exposures")}
            )
            kept = (await conn.execute(text("SELECT count(*) FROM exposures"))).scalar_one()
            events = (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
        assert "cases" not in tables and "case_id" not in columns
        assert (kept, events) == (5, 4)
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []


@only_postgres  # a PostgreSQL column storage setting
async def test_digests_are_never_compressed_on_postgresql(empty_database_url: str) -> None:
    """Random digests never compress, and trying cost PostgreSQL most of their write time."""
    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))
        async with engine.connect() as conn:
            storage = await conn.execute(
                text(
                    "SELECT c.relname, a.attname, a.attstorage::text FROM pg_attribute a "
                    "JOIN pg_class c ON c.oid = a.attrelid "
                    "WHERE (c.relname, a.attname) IN "
                    "(('corpus_segments', 'records'), ('corpus_pending', 'digests'))"
                )
            )
            assert sorted(storage.all()) == [
                ("corpus_pending", "digests", "e"),
                ("corpus_segments", "records", "e"),
            ]
