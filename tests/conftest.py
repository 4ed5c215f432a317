"""Shared fixtures: a fresh database per test on SQLite always, and on PostgreSQL when
``EXPOSURE_TEST_POSTGRES_URL`` is set (each test gets its own database, cloned from a migrated
template so a test costs a file copy or a ``CREATE DATABASE``, not a migration run).

The ``exposure`` command runs in this process (:func:`run_cli`) unless the process boundary
is what a test is about (:func:`run_script`: signals, exit statuses of the real script, several
processes at once)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import asyncpg
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings, load_settings
from exposure.store import db

TEST_PEPPER = "5ca1ab1e" * 8
EXPOSURE_SCRIPT = Path(sys.executable).with_name("exposure")
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
async def empty_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all."""
    if backend == "sqlite":
        # Not the migrated fixture's file: a test may use both.
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    assert POSTGRES_URL
    name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    yield _with_database(POSTGRES_URL, name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
    name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    assert POSTGRES_URL
    yield _with_database(POSTGRES_URL, name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with db.open_engine(database_url) as opened:
        yield opened


def environment(database_url: str, **overrides: str) -> dict[str, str]:
    """The variables a test run of the CLI or the settings loader sees."""
    return {
        "EXPOSURE_DATABASE_URL": database_url,
        "EXPOSURE_PEPPER": TEST_PEPPER,
        "EXPOSURE_BROKER_DOMAINS": "mirai-sec.co.jp,trade.sec.example",
        **overrides,
    }


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(environment(database_url), env_file=tmp_path / "absent.env")


class CliResult(NamedTuple):
    """What a run of the ``exposure`` command left: its exit status and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def _check(args: tuple[str, ...], result: CliResult, check: bool) -> CliResult:
    if check and result.returncode != 0:
        raise AssertionError(
            f"exposure {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\n"
            f"stderr: {result.stderr}"
        )
    return result


def _process_env(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """What the command sees: PATH and HOME from here, everything else from the test."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(cwd)), **env}


def run_script(
    *args: str, env: Mapping[str, str], cwd: Path, check: bool = True, timeout: float = 300
) -> CliResult:
    """Run the installed ``exposure`` console script in a child process, as a user would.

    For the tests where the process boundary is the point (exit statuses of the real script,
    signals, several processes at once); everything else uses :func:`run_cli`."""
    result = subprocess.run(
        [str(EXPOSURE_SCRIPT), *args],
        env=_process_env(env, cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return _check(args, CliResult(result.returncode, result.stdout, result.stderr), check)


# Read once, when exposure.ingest.pipeline is imported: a command run in this process cannot
# honour it, so a test that sets it must run the script (run_script).
_IMPORT_TIME_VARIABLES = frozenset({"EXPOSURE_INGEST_BATCH_EVENTS"})
_IN_PROCESS = threading.Lock()


def run_cli(*args: str, env: Mapping[str, str], cwd: Path, check: bool = True) -> CliResult:
    """Run ``exposure ARGS`` inside this process, as the console script would run it.

    The command sees exactly ``env`` (plus PATH and HOME) as its environment and ``cwd`` as its
    working directory, and runs on a thread of its own (commands call ``asyncio.run``; the
    test's event loop is busy on this one). Its stdout, stderr (log lines included) and exit
    status come back as the script's would; an uncaught exception becomes a traceback on
    stderr and status 1. The environment, the working directory, the logging set-up and the
    collector's frozen objects are put back afterwards.
    """
    unhonoured = _IMPORT_TIME_VARIABLES & set(env)
    if unhonoured:
        raise AssertionError(f"{sorted(unhonoured)} is read at import time: use run_script")
    if not _IN_PROCESS.acquire(blocking=False):
        raise AssertionError("in-process commands share os.environ: run them one at a time")
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="exposure-cli") as pool:
            result = pool.submit(_invoke, args, _process_env(env, cwd), cwd).result()
    finally:
        _IN_PROCESS.release()
    return _check(args, result, check)


def _invoke(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> CliResult:
    from exposure.cli import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {logger.name: logger.level for logger in _loggers()}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        outcome = CliRunner().invoke(main, list(args), prog_name="exposure")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for logger in _loggers():  # configure_logging quietens a few libraries' loggers
            logger.setLevel(saved_levels.get(logger.name, logging.NOTSET))
        gc.unfreeze()  # `run` freezes what is loaded, for a process that then exits
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "".join(traceback.format_exception(outcome.exception))
    return CliResult(outcome.exit_code, outcome.stdout, stderr)


def _loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
