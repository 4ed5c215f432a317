"""Enrolment against real SQLite and PostgreSQL: upserts, idempotence, offboarding, privacy."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import argon2
import asyncpg
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.customers import service as customer_service
from exposure.customers.enrolment import Enroller
from exposure.settings import Settings
from exposure.store import db
from exposure.store.access_models import AuditEntry
from exposure.store.audit import Actor
from exposure.store.db import SQLITE_PAGE_BYTES
from exposure.store.ingest import fingerprint_prefixes
from exposure.store.models import Customer, CustomerIdentifier
from tests.cli import run_cli
from tests.conftest import POSTGRES_URL, _asyncpg_dsn, environment, only_postgres, only_sqlite

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
TEST_ACTOR = Actor.cli("test-suite")
HEADER = "customer_id,email,login_id,phone,password_hash\n"

# Distinctive invented identifiers, so a scan for them cannot hit by chance.
PLAINTEXT = {
    "email": ["Kotoha.Minamoto+kabu@gmail.com", "zenjiro.hoshikawa@mirai-sec-test.jp"],
    "login_id": ["QXZW8821", "qxzw8821", "KBT-77105"],
    "phone": ["090-4417-2093", "09044172093", "+819044172093", "9044172093"],
}


def sample_csv() -> str:
    phc = HASHER.hash("Sakura#2025")
    return (
        HEADER
        + "\n".join(
            [
                f"C0001,Kotoha.Minamoto+kabu@gmail.com,QXZW8821,090-4417-2093,{phc}",
                "C0002,zenjiro.hoshikawa@mirai-sec-test.jp,,,",
                "C0002,,ＫＢＴ－７７１０５,,",  # repeated id adds an identifier (full-width input)
                "C0003,broken-email,,,",
                "C0004,,,123,",
            ]
        )
        + "\n"
    )


def make_enroller(settings: Settings) -> Enroller:
    return Enroller(
        settings.pepper.reveal(),
        login_id_case_sensitive=settings.login_id_case_sensitive,
        phone_region=settings.phone_region,
    )


async def snapshot(
    engine: AsyncEngine,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    async with engine.connect() as conn:
        customers = (await conn.execute(select(Customer.__table__).order_by("customer_id"))).all()
        idents = (
            await conn.execute(
                select(CustomerIdentifier.__table__).order_by("customer_id", "kind", "strength")
            )
        ).all()
    return [tuple(r) for r in customers], [tuple(r) for r in idents]


async def test_enrol_summary_and_idempotence(engine: AsyncEngine, settings: Settings) -> None:
    csv_text = sample_csv()
    result = await customer_service.enrol(
        engine, make_enroller(settings).read_csv(io.StringIO(csv_text)), actor=TEST_ACTOR
    )
    summary = result.as_json()
    assert summary["rows"] == 5
    assert summary["customers"] == 2
    assert summary["identifiers"] == {"email": 2, "login_id": 2, "phone": 1}
    assert summary["rejected"] == 2
    assert summary["rejected_rows"] == [
        {"line": 5, "reason": "email: no_at"},
        {"line": 6, "reason": "phone: not_a_phone"},
    ]
    assert summary["database"] == {
        "customers": 2,
        "identifiers": {"email": 2, "login_id": 2, "phone": 1},
    }
    before = await snapshot(engine)
    assert len(before[1]) == 6  # 5 strict + 1 gmail variant

    again = await customer_service.enrol(
        engine, make_enroller(settings).read_csv(io.StringIO(csv_text)), actor=TEST_ACTOR
    )
    assert again.database == result.database
    assert await snapshot(engine) == before  # not even updated_at moves


async def test_parallel_path_matches_the_sequential_one(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = [f"C{n:05d},user{n}.x@example.jp,ID{n:05d},," for n in range(2_500)]
    lines.insert(1_000, "C-bad,not-an-email,,,")
    csv_text = HEADER + "\n".join(lines) + "\n"
    monkeypatch.setattr(customer_service, "BATCH_ROWS", 300)
    monkeypatch.setattr(customer_service, "PARALLEL_FROM_BYTES", 0)
    result = await customer_service.enrol_csv(
        engine,
        make_enroller(settings),
        io.StringIO(csv_text),
        actor=TEST_ACTOR,
        size_hint=len(csv_text),
    )
    summary = result.as_json()
    assert summary["rows"] == 2_501 and summary["customers"] == 2_500
    assert summary["rejected_rows"] == [{"line": 1_002, "reason": "email: no_at"}]
    parallel = await snapshot(engine)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM customer_identifiers"))
        await conn.execute(text("DELETE FROM customers"))
    monkeypatch.setattr(customer_service, "PARALLEL_FROM_BYTES", 1 << 40)
    await customer_service.enrol_csv(
        engine,
        make_enroller(settings),
        io.StringIO(csv_text),
        actor=TEST_ACTOR,
        size_hint=len(csv_text),
    )
    sequential = await snapshot(engine)
    # Same customers and fingerprints (timestamps differ between the two runs).
    assert [c[:2] for c in parallel[0]] == [c[:2] for c in sequential[0]]
    assert parallel[1] == sequential[1]


async def test_new_password_hash_replaces_and_empty_keeps(
    engine: AsyncEngine, settings: Settings
) -> None:
    first, second = HASHER.hash("one"), HASHER.hash("two")
    enroller = make_enroller(settings)
    await customer_service.enrol(
        engine,
        enroller.read_csv(io.StringIO(HEADER + f"C9,a@example.jp,,,{first}\n")),
        actor=TEST_ACTOR,
    )
    await customer_service.enrol(
        engine, enroller.read_csv(io.StringIO(HEADER + "C9,,LOGIN99,,\n")), actor=TEST_ACTOR
    )
    async with engine.connect() as conn:
        stored = (await conn.execute(select(Customer.password_hash))).scalar_one()
    assert stored == first
    await customer_service.enrol(
        engine, enroller.read_csv(io.StringIO(HEADER + f"C9,,,,{second}\n")), actor=TEST_ACTOR
    )
    async with engine.connect() as conn:
        stored = (await conn.execute(select(Customer.password_hash))).scalar_one()
    assert stored == second


async def test_offboarding_removes_every_fingerprint(
    engine: AsyncEngine, settings: Settings
) -> None:
    await customer_service.enrol(
        engine, make_enroller(settings).read_csv(io.StringIO(sample_csv())), actor=TEST_ACTOR
    )
    pepper = settings.pepper.reveal()
    assert await customer_service.offboard(engine, "C0001", actor=TEST_ACTOR, pepper=pepper)
    assert not await customer_service.offboard(engine, "C0001", actor=TEST_ACTOR, pepper=pepper)
    customers, idents = await snapshot(engine)
    assert [c[0] for c in customers] == ["C0002"]
    assert {i[1] for i in idents} == {"C0002"}


async def _dump_everything(database_url: str, tmp_path: Path) -> bytes:
    """Every byte the database holds for us: the SQLite files (the spooled corpus digests
    beside them too), or a pg_dump / table dump."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        files = (f for p in path.parent.glob(path.name + "*") for f in [p, *p.rglob("*")])
        return b"".join(f.read_bytes() for f in files if f.is_file())
    assert POSTGRES_URL
    dsn = _asyncpg_dsn(POSTGRES_URL, database_url.rsplit("/", 1)[1])
    if shutil.which("pg_dump"):
        dump = await asyncio.to_thread(
            subprocess.run, ["pg_dump", "--no-owner", dsn], capture_output=True, check=True
        )
        return dump.stdout
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ]
        rows = [
            await conn.fetch(f'SELECT t::text FROM "{name}" t')  # noqa: S608 (catalogue names)
            for name in tables
        ]
        return "\n".join(str(r[0]) for batch in rows for r in batch).encode()
    finally:
        await conn.close()


async def test_cli_enrol_leaves_no_plaintext_identifier(database_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(sample_csv(), encoding="utf-8")
    env = environment(database_url)
    result = run_cli("enroll", str(csv_path), env=env, cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert summary["customers"] == 2 and summary["rejected"] == 2
    output = result.stdout + result.stderr
    dump = await _dump_everything(database_url, tmp_path)
    assert b"C0001" in dump  # the scan does see stored text
    for kind, values in PLAINTEXT.items():
        for value in values:
            for form in {value, value.lower(), value.upper()}:
                assert form.encode() not in dump, f"{kind} found in the database"
                assert form not in output, f"{kind} found in the command output"
    # Bytes of the normalised gmail variant and the full-width login must not be there either.
    assert b"kotohaminamoto@gmail.com" not in dump
    assert "ＫＢＴ".encode() not in dump


async def test_cli_delete_and_errors(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url)
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(sample_csv(), encoding="utf-8")
    run_cli("enroll", str(csv_path), env=env, cwd=tmp_path)
    deleted = run_cli("customers", "delete", "C0002", env=env, cwd=tmp_path)
    assert json.loads(deleted.stdout) == {"customer_id": "C0002", "deleted": True}
    missing = run_cli("customers", "delete", "C0002", env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("id,mail\n1,a@b.jp\n")
    failed = run_cli("enroll", str(bad), env=env, cwd=tmp_path, check=False)
    assert failed.returncode == 2
    assert "no customer_id column" in failed.stderr and "Traceback" not in failed.stderr


async def test_wrong_pepper_is_refused(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url, EXPOSURE_PEPPER="11" * 32)
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(sample_csv(), encoding="utf-8")
    result = run_cli("enroll", str(csv_path), env=env, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "EXPOSURE_PEPPER does not match" in result.stderr


async def test_cli_db_upgrade_on_empty_database(empty_database_url: str, tmp_path: Path) -> None:
    env = environment(empty_database_url)
    not_ready = run_cli("enroll", __file__, env=env, cwd=tmp_path, check=False)
    assert not_ready.returncode == 2 and "exposure db upgrade" in not_ready.stderr
    result = run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert json.loads(result.stdout)["upgraded"] is True


@only_sqlite
async def test_sqlite_runs_in_wal_mode(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        assert (await conn.execute(text("PRAGMA page_size"))).scalar_one() == SQLITE_PAGE_BYTES


async def test_an_existing_sqlite_file_keeps_its_page_size(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.db"
    with closing(sqlite3.connect(legacy)) as conn:  # created by an older release: 4 KiB pages
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE t (x)")
    async with db.open_engine(f"sqlite+aiosqlite:///{legacy}") as engine:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA page_size"))).scalar_one() == 4096
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"


@pytest.mark.parametrize("odd_length", [False, True])
async def test_index_prefixes_keep_every_byte(engine: AsyncEngine, odd_length: bool) -> None:
    """The database concatenates the prefixes: NUL, 0xFF and invalid UTF-8 must pass intact,
    also when a fingerprint is not 32 bytes long (SQLite then takes another path)."""
    awkward = [b"\x00" * 32, b"\xff\xfe" * 16, b"\xc3\x28" + bytes(range(30)), bytes(range(32))]
    if odd_length:
        awkward.append(b"\x01\x00" * 10)
    async with engine.begin() as conn:
        await conn.execute(insert(Customer.__table__).values(customer_id="B1", password_hash=None))
        await conn.execute(
            insert(CustomerIdentifier.__table__),
            [
                {
                    "fingerprint": fingerprint,
                    "customer_id": "B1",
                    "strength": "strict",
                    "kind": "email",
                    "scheme": 1,
                    "hint": "b***@x",
                }
                for fingerprint in awkward
            ],
        )
    async with engine.connect() as conn:
        joined = await fingerprint_prefixes(conn, 8)
    assert sorted(joined[i : i + 8] for i in range(0, len(joined), 8)) == sorted(
        fingerprint[:8] for fingerprint in awkward
    )


async def test_a_crash_part_way_keeps_whole_commits_and_a_rerun_completes(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches share a transaction up to COMMIT_ROWS: a failure keeps the groups committed
    before it, loses only the open group, writes no audit entry; enrolling again completes."""
    monkeypatch.setattr(customer_service, "BATCH_ROWS", 100)
    monkeypatch.setattr(customer_service, "COMMIT_ROWS", 300)
    enroller = make_enroller(settings)
    records = [(n, {"customer_id": f"C{n:04d}", "email": f"u{n}@example.jp"}) for n in range(500)]

    class Crash(Exception):
        pass

    def crashing() -> Iterator[Any]:
        for number, (line, record) in enumerate(records):
            if number == 450:  # rows 300-399 are written, in the open transaction
                raise Crash
            yield enroller.build(line, record)

    with pytest.raises(Crash):
        await customer_service.enrol(engine, crashing(), actor=TEST_ACTOR)
    async with engine.connect() as conn:
        enrolled = (await conn.execute(select(Customer.customer_id))).scalars().all()
        audited = (await conn.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
    assert sorted(enrolled) == [f"C{n:04d}" for n in range(300)]
    assert audited == 0
    result = await customer_service.enrol(
        engine, (enroller.build(line, record) for line, record in records), actor=TEST_ACTOR
    )
    assert result.database.customers == 500
    async with engine.connect() as conn:
        audited = (await conn.execute(select(func.count()).select_from(AuditEntry))).scalar_one()
    assert audited == 1


@only_postgres
async def test_a_bulk_enrolment_refreshes_postgres_statistics(
    engine: AsyncEngine, settings: Settings
) -> None:
    # An ingest right after a bulk enrolment plans its identifier look-ups by them; a small
    # enrolment (the API's, one customer at a time) leaves them to autovacuum.
    async def analysed() -> bool:
        async with engine.connect() as conn:
            row = await conn.execute(
                text(
                    "SELECT last_analyze FROM pg_stat_user_tables "
                    "WHERE relname = 'customer_identifiers'"
                )
            )
            return row.scalar_one() is not None

    small = "customer_id,email,login_id,phone,password_hash\nS-1,small.one@example.jp,,,\n"
    await customer_service.enrol(
        engine, make_enroller(settings).read_csv(io.StringIO(small)), actor=TEST_ACTOR
    )
    assert not await analysed()
    rows = [f"B-{n},bulk.{n}@example.jp,,," for n in range(customer_service.STATISTICS_FROM_ROWS)]
    bulk = "customer_id,email,login_id,phone,password_hash\n" + "\n".join(rows) + "\n"
    await customer_service.enrol(
        engine, make_enroller(settings).read_csv(io.StringIO(bulk)), actor=TEST_ACTOR
    )
    assert await analysed()
