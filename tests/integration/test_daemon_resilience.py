"""The daemon's own resilience, as real processes: a restarted daemon takes back at once what
its dead predecessor had claimed (and nothing of anyone else's); SIGTERM ends it within
EXPOSURE_STOP_GRACE_SECONDS whatever it is waiting on; a taken port stops it before it says it
runs (docs/decisions/database-reconnect.md)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.ingest.large_files import register_file
from exposure.store import large_files as chunk_queries
from exposure.store.models import IngestChunk, OutboxEvent
from tests.cli import run_cli, run_script
from tests.conftest import environment
from tests.feeds import settings_for
from tests.integration.receiver import Receiver, serving
from tests.integration.test_daemon import daemon_env, free_port, log_lines, start
from tests.leakgen import enrolment_csv, policy_cases
from tests.waiting import eventually

OWN = f"{socket.gethostname()[:40]}:daemon0"  # the first slot of a fresh slot folder
ELSEWHERE = "another-host:daemon0"


async def _chunk_states(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(IngestChunk.state))).scalars())


async def _event_rows(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        return [
            (row.event_id, row.state, row.lease_owner)
            for row in await conn.execute(
                select(OutboxEvent.event_id, OutboxEvent.state, OutboxEvent.lease_owner)
            )
        ]


@pytest.mark.timeout(120)
async def test_a_restarted_daemon_takes_back_its_own_claims_at_once(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    cases = policy_cases()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
    # Events waiting in the outbox (no receiver configured while ingesting).
    quiet = environment(database_url)
    run_cli("enroll", str(tmp_path / "customers.csv"), env=quiet, cwd=tmp_path)
    (tmp_path / "leaks.txt").write_text("\n".join(line for c in cases for line in c.lines) + "\n")
    run_cli("ingest", str(tmp_path / "leaks.txt"), env=quiet, cwd=tmp_path)
    # A large dump in chunks, one of them claimed by the dead daemon for ten more minutes.
    big = inbox / "big.txt"
    big.write_text("".join(f"filler.{n:05d}@example.org:Filler-{n}\n" for n in range(400)))
    settings = settings_for(database_url, tmp_path, EXPOSURE_FOLDER_PATH=str(inbox))
    registered = await register_file(
        engine, settings, big, chunk_bytes=2048, source="folder", done_folder=inbox / "processed"
    )
    assert registered is not None and registered.chunks > 3
    now = utcnow()
    async with engine.begin() as conn:
        claimed = await chunk_queries.claim(
            conn, owner=OWN, now=now, lease_until=now + timedelta(minutes=10), max_attempts=5
        )
    assert claimed is not None
    events = await _event_rows(engine)
    assert len(events) >= 2
    (own_event, *_), (other_event, *_) = events[0], events[1]
    async with engine.begin() as conn:
        for event_id, owner in ((own_event, OWN), (other_event, ELSEWHERE)):
            await conn.execute(
                update(OutboxEvent)
                .where(OutboxEvent.event_id == event_id)
                .values(lease_owner=owner, lease_until=now + timedelta(minutes=10))
            )

    async with serving(Receiver()) as receiver:
        env = daemon_env(
            database_url,
            inbox,
            receiver.url,
            TMPDIR=str(tmp_path),
            EXPOSURE_FOLDER_CHUNK_BYTES="2048",  # the folder sees the same large file
        )
        log = tmp_path / "daemon.log"
        process = start(env, tmp_path, log)
        try:
            await eventually(lambda: (inbox / "processed" / "big.txt").exists(), within=60)
            await eventually(lambda: own_event in receiver.ids(), within=30)
            # Everything else that was due went out too; the other daemon's event did not.
            await eventually(
                lambda: len(receiver.ids()) == len(events) - 1, within=30, what="deliveries"
            )
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
    assert await _chunk_states(engine) == {"done"}
    assert other_event not in receiver.ids()
    rows = {event_id: (state, owner) for event_id, state, owner in await _event_rows(engine)}
    assert rows[other_event] == ("pending", ELSEWHERE)
    running = [line for line in log_lines(log) if line["msg"] == "exposure daemon running"]
    assert running and running[0]["lease_owner"] == OWN
    assert any(
        "took over 1 chunk(s) and 1 webhook event(s)" in line["msg"] for line in log_lines(log)
    )


def test_the_watchdog_ends_a_process_whose_main_thread_is_stuck() -> None:
    """Nothing in the event loop can help when the loop itself is blocked: the watchdog's own
    thread ends the process once the grace period is over (status 1, a line that says so)."""
    program = (
        "import time\n"
        "from exposure.runtime.daemon import StopWatchdog\n"
        "StopWatchdog(1.0).arm()\n"
        "time.sleep(60)  # stuck: no signal handler, no event loop gets to run\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 1
    assert "EXPOSURE_STOP_GRACE_SECONDS" in done.stderr


@pytest.mark.timeout(120)
async def test_sigterm_stops_a_daemon_waiting_on_a_feed_that_never_answers(
    database_url: str, tmp_path: Path
) -> None:
    """A connector run blocked on a response that never comes (up to five minutes of socket
    timeout): SIGTERM still ends the daemon within its grace period, cleanly."""
    answered = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        answered.set()
        await asyncio.sleep(3600)
        return web.Response()

    app = web.Application()
    app.router.add_get("/feed", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    grace = 6
    env = daemon_env(
        database_url,
        tmp_path / "inbox",
        "",
        EXPOSURE_CONNECTORS="http_feed",
        EXPOSURE_HTTP_FEED_URL=f"http://127.0.0.1:{port}/feed",
        EXPOSURE_HTTP_FEED_SCHEDULE="every 1h",
        EXPOSURE_STOP_GRACE_SECONDS=str(grace),
        TMPDIR=str(tmp_path),
    )
    env.pop("EXPOSURE_WEBHOOK_URL")
    log = tmp_path / "daemon.log"
    process = start(env, tmp_path, log)
    try:
        await asyncio.wait_for(answered.wait(), 30)  # the run is waiting on the feed now
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, grace + 10)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        await runner.cleanup()
    assert took <= grace, took
    assert code == 0
    lines = log_lines(log)
    assert lines[-1]["msg"] == "exposure daemon stopped"
    # The run gave up the page it was waiting for as soon as the stop came (its cursor is
    # untouched, so the next run asks again): nothing had to be cancelled.
    assert any(
        line["msg"] == "connector http_feed: success (0 pages, 0 records, 0 matched)"
        for line in lines
    )
    assert not any("cancelled" in line["msg"] for line in lines)


def _holding_a_port() -> tuple[socket.socket, int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", free_port()))
    holder.listen()
    return holder, holder.getsockname()[1]


@pytest.mark.parametrize("command", ["run", "api"])
def test_a_taken_port_is_one_line_naming_the_setting(
    command: str, database_url: str, tmp_path: Path
) -> None:
    holder, port = _holding_a_port()
    try:
        env = environment(
            database_url, EXPOSURE_API_LISTEN=f"127.0.0.1:{port}", TMPDIR=str(tmp_path)
        )
        done = run_script(command, env=env, cwd=tmp_path, check=False, timeout=60)
    finally:
        holder.close()
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: EXPOSURE_API_LISTEN: 127.0.0.1:{port} is already in use (another exposure api "
        "or daemon, or another server); stop it or choose another host:port"
    ]
    assert "Traceback" not in done.stderr and "Task-" not in done.stderr
    assert "exposure daemon running" not in done.stderr
