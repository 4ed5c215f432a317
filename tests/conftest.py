"""Shared fixtures: a fresh database per test on SQLite always, and on PostgreSQL when
``EXPOSURE_TEST_POSTGRES_URL`` is set (each test gets its own database, cloned from a migrated
template so a test costs a file copy or a ``CREATE DATABASE``, not a migration run)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings, load_settings
from exposure.store import db

TEST_PEPPER = "5ca1ab1e" * 8
POSTGRES_URL = os.environ.get("EXPOSURE_TEST_POSTGRES_URL")

POSTGRES = pytest.param(
    "postgres",
    marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not POSTGRES_URL, reason="EXPOSURE_TEST_POSTGRES_URL not set"),
    ],
)
BACKENDS = ["sqlite", POSTGRES]
# For a test about one backend only: it is not generated for the other (rather than skipped).
only_sqlite = pytest.mark.parametrize("backend", ["sqlite"])
only_postgres = pytest.mark.parametrize("backend", [POSTGRES])


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    assert POSTGRES_URL
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    assert POSTGRES_URL
    name = f"exposure_tpl_{os.getpid()}"

    async def create() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _admin(f'CREATE DATABASE "{name}"')
        async with db.open_engine(_with_database(POSTGRES_URL, name)) as engine:
            await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))

    # Requested lazily from inside async fixtures, so run on a thread with a loop of its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
    yield name
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')).result()


@pytest.fixture(scope="session")
def drop_later() -> Iterator[Callable[[str], None]]:
    """Drops a finished test's PostgreSQL database in the background. One DROP DATABASE takes
    up to a second here (it waits on the server's checkpointer), while several at once take
    hardly longer than one: so they run beside the next tests, up to eight together, instead
    of adding to each test. The session ends once every drop is done."""
    dropping: list[Future[None]] = []
    with ThreadPoolExecutor(8, thread_name_prefix="drop-database") as pool:

        def drop(name: str) -> None:
            sql = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            dropping.append(pool.submit(asyncio.run, _admin(sql)))

        yield drop
    for done in dropping:
        done.result()  # a failed drop fails the session's teardown


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is a copy of."""
    path = tmp_path_factory.mktemp("template") / "exposure.db"

    async def create() -> None:
        async with db.open_engine(f"sqlite+aiosqlite:///{path}") as engine:
            await db.upgrade(engine, bytes.fromhex(TEST_PEPPER))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, create()).result()
    # Closing the last connection checkpointed the write-ahead log: the file is the database.
    assert not path.with_name(f"{path.name}-wal").exists()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A database with no schema at all."""
    if backend == "sqlite":
        # Not the migrated fixture's file: a test may use both.
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    assert POSTGRES_URL
    drop_later = request.getfixturevalue("drop_later")
    name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield _with_database(POSTGRES_URL, name)
    drop_later(name)


@pytest.fixture
async def database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh, migrated database."""
    if backend == "sqlite":
        path = tmp_path / "exposure.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    drop_later = request.getfixturevalue("drop_later")
    name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    assert POSTGRES_URL
    yield _with_database(POSTGRES_URL, name)
    drop_later(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with db.open_engine(database_url) as opened:
        yield opened


def pytest_configure(config: pytest.Config) -> None:
    """The tests' cache folder (enrolled indexes of PostgreSQL databases): a temporary one,
    never the user's, for in-process commands and (through :func:`environment`) child ones."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="exposure-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ.pop("XDG_CACHE_HOME", ""), ignore_errors=True)


def environment(database_url: str, **overrides: str) -> dict[str, str]:
    """The variables a test run of the CLI or the settings loader sees."""
    return {
        "EXPOSURE_DATABASE_URL": database_url,
        "EXPOSURE_PEPPER": TEST_PEPPER,
        "EXPOSURE_BROKER_DOMAINS": "mirai-sec.co.jp,trade.sec.example",
        "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", ""),
        **overrides,
    }


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(environment(database_url), env_file=tmp_path / "absent.env")
