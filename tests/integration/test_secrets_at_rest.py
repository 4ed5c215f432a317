"""Files holding secrets are private (the SQLite database and its -wal/-shm companions 0600,
spool files 0600 in a 0700 folder, .env 0600, reports 0640 in a 0750 folder), and no log level
prints an enrolled password hash or an API token's hash."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select, text

from exposure.store import db
from exposure.store.access_models import ApiToken
from exposure.store.models import Customer
from tests.cli import EXPOSURE_SCRIPT, run_cli
from tests.conftest import TEST_PEPPER, environment, only_sqlite
from tests.integration.test_daemon import answers, daemon_env, free_port, stop
from tests.leakgen import enrolment_csv, policy_cases
from tests.waiting import eventually


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual umask, under which files are created world-readable unless we say not."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@only_sqlite
@pytest.mark.usefixtures("lax_umask")
async def test_the_sqlite_database_and_its_companions_are_private(
    backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "fresh.db"
    env = environment(f"sqlite+aiosqlite:///{path}")
    run_cli("db", "upgrade", env=env, cwd=tmp_path)
    assert _mode(path) == 0o600
    async with db.open_engine(f"sqlite+aiosqlite:///{path}") as engine:
        async with engine.begin() as conn:  # a write: the -wal and -shm files exist meanwhile
            await conn.execute(text("UPDATE meta SET value = value"))
            wal, shm = path.with_name("fresh.db-wal"), path.with_name("fresh.db-shm")
            assert wal.exists() and shm.exists()
            assert (_mode(wal), _mode(shm)) == (0o600, 0o600)

    # A database file made world-readable by an older release is made private when opened.
    os.chmod(path, 0o644)
    run_cli("exposures", env=env, cwd=tmp_path)
    assert _mode(path) == 0o600


@only_sqlite
@pytest.mark.usefixtures("lax_umask")
async def test_spool_files_the_env_file_and_reports_are_private(
    backend: str, tmp_path: Path
) -> None:
    env = {"EXPOSURE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'exposure.db'}"}
    run_cli("db", "upgrade", env=env, cwd=tmp_path)  # no pepper: one is written to .env
    assert _mode(tmp_path / ".env") == 0o600
    (tmp_path / "leaks.txt").write_text("someone@example.org:Some-Password-1\n")
    run_cli("ingest", str(tmp_path / "leaks.txt"), env=env, cwd=tmp_path)
    spool = tmp_path / "exposure.db-corpus"
    files = list(spool.iterdir())
    assert _mode(spool) == 0o700 and files and {_mode(f) for f in files} == {0o600}
    run_cli("report", "--out", str(tmp_path / "reports"), env=env, cwd=tmp_path)
    reports = tmp_path / "reports"
    assert _mode(reports) == 0o750
    assert {_mode(f) for f in reports.iterdir()} == {0o640}


def _verbose_daemon(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``exposure -v run``: JSON lines at DEBUG."""
    return subprocess.Popen(
        [str(EXPOSURE_SCRIPT), "-v", "run"],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def _secrets(rows: list[str]) -> list[str]:
    """Each hash whole, and its last field alone (the part that would be cracked)."""
    return [part for row in rows for part in (row, row.rsplit("$", 1)[-1]) if len(part) >= 16]


@pytest.mark.timeout(120)
async def test_no_log_level_prints_a_password_hash_or_a_token_hash(
    database_url: str, tmp_path: Path
) -> None:
    cases = policy_cases()
    (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
    (tmp_path / "leaks.txt").write_text("\n".join(line for c in cases for line in c.lines) + "\n")
    env = environment(database_url)
    outputs: list[str] = []
    for verbose in ((), ("-v",)):  # INFO and DEBUG, text logs
        for command in (
            ("enroll", str(tmp_path / "customers.csv")),
            ("tokens", "create", "reader", "--scope", "read"),
            ("ingest", str(tmp_path / "leaks.txt")),
            ("exposures", "--format", "jsonl"),
            ("tokens", "list"),
        ):
            done = run_cli(*verbose, *command, env=env, cwd=tmp_path)
            outputs += [done.stdout, done.stderr]
    token = next(
        line.split('"token": "')[1].split('"')[0] for line in outputs if '"token": "exp_' in line
    )
    # The daemon's JSON logs at DEBUG, checking the token on an API request.
    port = free_port()
    daemon = daemon_env(database_url, tmp_path / "inbox", "")
    daemon |= {"EXPOSURE_API_LISTEN": f"127.0.0.1:{port}", "TMPDIR": str(tmp_path)}
    daemon.pop("EXPOSURE_WEBHOOK_URL")
    log = tmp_path / "daemon.log"
    process = _verbose_daemon(daemon, tmp_path, log)
    try:
        await eventually(lambda: answers(f"http://127.0.0.1:{port}"), what="the API")
        async with aiohttp.ClientSession() as session:
            for secret in (token, token[:-2] + "xx"):  # a good token and a wrong one
                headers = {"Authorization": f"Bearer {secret}"}
                async with session.get(f"http://127.0.0.1:{port}/v1/exposures", headers=headers):
                    pass
    finally:
        assert stop(process) == 0
    daemon_log = log.read_text()
    assert '"level": "debug"' in daemon_log  # the daemon logged at DEBUG
    outputs.append(daemon_log)
    async with db.open_engine(database_url) as engine, engine.connect() as conn:
        enrolled = [h for h in (await conn.execute(select(Customer.password_hash))).scalars() if h]
        tokens = list((await conn.execute(select(ApiToken.secret_hash))).scalars())
    assert enrolled and tokens
    everything = "\n".join(outputs)
    assert "DEBUG" in everything  # -v did log at DEBUG
    for secret in _secrets(enrolled) + _secrets(tokens):
        assert secret not in everything
    assert TEST_PEPPER not in everything
