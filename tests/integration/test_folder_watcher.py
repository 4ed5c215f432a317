"""The drop folder reacts within a second: with the default schedule (a poll a minute) and a
long settle time, a dump renamed into the inbox of a running daemon is ingested and its forced
reset delivered at once, while a file written in place still waits for the settle check."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.integration.receiver import Receiver, serving
from tests.integration.test_daemon import daemon_env, drop, start, stop
from tests.leakgen import enrolment_csv, policy_cases
from tests.waiting import eventually


@pytest.mark.timeout(120)
async def test_a_renamed_dump_skips_the_poll_and_the_settle_wait(
    database_url: str, tmp_path: Path
) -> None:
    live, other = policy_cases()[:2]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with serving(Receiver()) as receiver:
        env = daemon_env(database_url, inbox, receiver.url)
        env.pop("EXPOSURE_FOLDER_SCHEDULE")  # the default: every minute
        env["EXPOSURE_FOLDER_SETTLE_SECONDS"] = "300"  # far beyond this test's time
        (tmp_path / "customers.csv").write_text(enrolment_csv([live, other]))
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        log = tmp_path / "daemon.log"
        process = start(env, tmp_path, log)
        try:
            await eventually(
                lambda: "watching the inbox" in log.read_text(), within=30, what="the watch"
            )
            (inbox / "in-place.txt").write_text("\n".join(other.lines) + "\n", "utf-8")
            drop(inbox, "renamed.txt", "\n".join(live.lines) + "\n")
            await eventually(
                lambda: (inbox / "processed" / "renamed.txt").exists(), within=20, what="ingest"
            )
            await eventually(lambda: len(receiver.verified()) >= 1, within=20, what="webhook")
            # Written where it lies: it waits for the settle check (five minutes here).
            assert (inbox / "in-place.txt").exists()
        finally:
            assert stop(process) == 0
    customers = {seen.body.decode() for seen in receiver.verified()}
    assert all(live.customer_id in body for body in customers)
