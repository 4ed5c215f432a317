"""`exposure run` end to end: a dump dropped into the inbox becomes a verified webhook at a local
receiver; SIGTERM stops it cleanly; configuration errors stop it at start-up; on PostgreSQL two
replicas share the work without sending an event twice or running a connector twice at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.store.models import ConnectorRun, OutboxEvent
from tests.cli import EXPOSURE_SCRIPT, CliResult, run_cli, run_script
from tests.conftest import environment, only_postgres
from tests.integration.receiver import NEW_SECRET, Receiver, serving
from tests.leakgen import BROKER, CURRENT, enrolment_csv, policy_cases
from tests.waiting import eventually


def daemon_env(database_url: str, inbox: Path, url: str, **extra: str) -> dict[str, str]:
    return environment(
        database_url,
        EXPOSURE_BROKER_DOMAINS=BROKER,
        EXPOSURE_WEBHOOK_URL=url,
        EXPOSURE_WEBHOOK_SECRET=NEW_SECRET,
        EXPOSURE_API_LISTEN="127.0.0.1:0",
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SCHEDULE="every 1s",
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.2",
        EXPOSURE_REPORT_DIR=str(inbox.parent / "reports"),
        **extra,
    )


def start(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(EXPOSURE_SCRIPT), "run"],
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def drop(inbox: Path, name: str, text: str) -> None:
    """Write as a dotfile, then rename: how a careful producer drops into a watched folder."""
    staged = inbox / f".{name}.part"
    staged.write_text(text, "utf-8")
    staged.rename(inbox / name)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def log_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


async def answers(url: str) -> bool:
    """Whether the API at ``url`` is up and ready."""
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def outbox_delivered(engine: AsyncEngine, expected: int) -> bool:
    """Every one of the ``expected`` events is marked delivered: no send is left to make."""
    async with engine.connect() as conn:
        states = (await conn.execute(select(OutboxEvent.state))).scalars().all()
    return len(states) == expected and set(states) == {"delivered"}


@pytest.mark.timeout(180)
async def test_inbox_dump_becomes_a_verified_webhook(database_url: str, tmp_path: Path) -> None:
    cases = policy_cases()[:2]  # two live passwords: force_reset
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with serving(Receiver()) as receiver:
        env = daemon_env(database_url, inbox, receiver.url)
        (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        log = tmp_path / "daemon.log"
        process = start(env, tmp_path, log)
        try:
            drop(inbox, "leak.txt", "\n".join(line for case in cases for line in case.lines) + "\n")
            await eventually(lambda: len(receiver.verified()) >= 2, within=60)
            await eventually(lambda: (inbox / "processed" / "leak.txt").exists(), within=60)
        finally:
            code = stop(process)
    assert code == 0
    bodies = [json.loads(seen.body) for seen in receiver.verified()]
    assert {b["data"]["customer_id"] for b in bodies} == {"P01", "P02"}
    assert {b["type"] for b in bodies} == {"exposure.force_reset"}
    assert len(receiver.ids()) == 2 and all(n == 1 for n in receiver.ids().values())
    lines = log_lines(log)
    assert lines and all("level" in line and "msg" in line for line in lines)  # JSON logs
    assert lines[-1]["msg"] == "exposure daemon stopped"
    assert lines[-1]["connector_runs_success"] >= 1, log.read_text()[-3000:]
    text = log.read_text()
    assert CURRENT not in text and cases[0].email not in text  # nothing plaintext in the logs


async def test_configuration_errors_stop_it_at_start(tmp_path: Path) -> None:
    """The real script's exit status and stderr (``run`` installs signal handlers, which only
    a process's main thread can: these stay child processes, started side by side)."""
    broken = [
        {"EXPOSURE_CONNECTORS": "folder,nosuch"},
        {"EXPOSURE_FOLDER_SCHEDULE": "sometimes"},
        {"EXPOSURE_WEBHOOK_URL": "http://127.0.0.1:9/x"},
    ]

    def run(n: int, extra: dict[str, str]) -> CliResult:
        database = f"sqlite+aiosqlite:///{tmp_path / f'x{n}.db'}"  # one each: they run at once
        env = environment(database, EXPOSURE_API_LISTEN="127.0.0.1:0", **extra)
        return run_script("run", env=env, cwd=tmp_path, check=False)

    unknown, schedule, secret = await asyncio.gather(
        *(asyncio.to_thread(run, n, extra) for n, extra in enumerate(broken))
    )
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
    assert schedule.returncode == 2 and "EXPOSURE_FOLDER_SCHEDULE" in schedule.stderr
    assert secret.returncode == 2 and "EXPOSURE_WEBHOOK_SECRET" in secret.stderr
    assert "Traceback" not in unknown.stderr + schedule.stderr + secret.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_no_configuration_at_all_runs_on_the_embedded_default(tmp_path: Path) -> None:
    """Nothing configured but the API's port (a free one: the default 127.0.0.1:8080, checked
    in tests/unit/test_settings.py, may be taken on a shared machine)."""
    port = free_port()
    process = start({"EXPOSURE_API_LISTEN": f"127.0.0.1:{port}"}, tmp_path, tmp_path / "daemon.log")
    try:
        await eventually(
            lambda: (tmp_path / "exposure.db").exists() and (tmp_path / "inbox").is_dir()
        )
        await eventually(lambda: answers(f"http://127.0.0.1:{port}"), what="the API")
    finally:
        code = stop(process)
    assert code == 0
    assert "EXPOSURE_PEPPER=" in (tmp_path / ".env").read_text()
    assert "WARNING" in (tmp_path / "daemon.log").read_text()  # the loud pepper warning


@only_postgres  # replicas share PostgreSQL
@pytest.mark.timeout(300)
async def test_two_replicas_share_one_database(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    cases = policy_cases()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with serving(Receiver()) as receiver:
        env = daemon_env(database_url, inbox, receiver.url)
        (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        replicas = [start(env, tmp_path, tmp_path / f"replica{i}.log") for i in range(2)]
        try:
            for n in range(4):
                lines = [line for case in cases[n::4] for line in case.lines]
                drop(inbox, f"leak{n}.txt", "\n".join(lines) + "\n")
            expected = sum(case.action != "none" for case in cases)
            await eventually(lambda: len(receiver.ids()) >= expected, within=90)
            processed = inbox / "processed"
            await eventually(lambda: len(list(processed.glob("leak*.txt"))) == 4, within=60)
            # No duplicate can still be on its way once (1) a folder run that started after
            # every dump was moved has finished (runs never overlap, so any run that saw a
            # dump is over, and no later one sees any), (2) every event is marked delivered,
            # and (3) both replicas have stopped, which finishes their in-flight sends.
            moved = utcnow()
            await eventually(lambda: folder_run_since(engine, moved), within=60)
            await eventually(lambda: outbox_delivered(engine, expected), within=60)
        finally:
            codes = [stop(process) for process in replicas]
    assert codes == [0, 0]
    assert len(receiver.ids()) == expected
    assert all(count == 1 for count in receiver.ids().values()), receiver.ids()
    async with engine.connect() as conn:
        runs = (
            await conn.execute(
                select(ConnectorRun.started_at, ConnectorRun.finished_at)
                .where(ConnectorRun.connector == "folder", ConnectorRun.outcome == "success")
                .order_by(ConnectorRun.started_at)
            )
        ).all()
    assert runs
    # The advisory lock: no two folder runs ever overlapped in time.
    for (_, finished), (started, _) in itertools.pairwise(runs):
        assert finished is not None and finished <= started


async def folder_run_since(engine: AsyncEngine, moment: datetime) -> bool:
    """Whether a folder run that started after ``moment`` has finished."""
    async with engine.connect() as conn:
        finished = await conn.execute(
            select(ConnectorRun.id).where(
                ConnectorRun.connector == "folder",
                ConnectorRun.outcome == "success",
                ConnectorRun.started_at > moment,
            )
        )
        return finished.first() is not None
