"""``/healthz``, ``/readyz`` (up; no schema; outdated schema; wrong pepper; unreachable) and
``/metrics`` (process counters plus exposures by action and state read at scrape time)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.clock import utcnow
from exposure.metrics import INGEST_LINES
from exposure.secret import Secret
from exposure.settings import Settings, load_settings
from exposure.store import db
from exposure.store.models import OutboxEvent, WebhookEndpoint
from tests.cli import EXPOSURE_SCRIPT, run_cli
from tests.conftest import TEST_PEPPER, environment
from tests.integration.test_api_support import (
    T0,
    add_case,
    add_customer,
    add_exposure,
    api_client,
    bearer,
    error_of,
    make_token,
)
from tests.integration.test_daemon import answers, free_port
from tests.leakgen import enrolment_csv, policy_cases
from tests.waiting import eventually

# Well-formed, so the request reaches the database to look it up.
_SOME_TOKEN = "exp_0123456789abcdef_" + "A" * 43


async def test_ready_and_alive(engine: AsyncEngine, settings: Settings) -> None:
    async with api_client(settings, engine) as client:
        response = await client.get("/healthz")
        assert response.status == 200 and await response.json() == {"status": "ok"}
        response = await client.get("/readyz")
        assert response.status == 200
        body = await response.json()
        assert body["status"] == "ready" and body["schema_revision"]


async def test_not_ready_without_schema(empty_database_url: str, settings: Settings) -> None:
    async with db.open_engine(empty_database_url) as empty:
        async with api_client(settings, empty) as client:
            assert (await client.get("/healthz")).status == 200  # alive all the same
            response = await client.get("/readyz")
            assert (await error_of(response, 503))["code"] == "schema_missing"
            assert response.headers["Retry-After"]
            # Requests that need the schema fail as unavailable, not as a 500.
            failed = await client.get("/v1/exposures", headers=bearer(_SOME_TOKEN))
            assert (await error_of(failed, 503))["code"] == "database_unavailable"
            metrics = await (await client.get("/metrics")).text()
        assert "exposure_database_up 0.0" in metrics

        await db.upgrade(empty, bytes.fromhex(TEST_PEPPER), revision="0002")
        async with api_client(settings, empty) as client:
            error = await error_of(await client.get("/readyz"), 503)
        assert error["code"] == "schema_outdated" and "exposure db upgrade" in error["message"]


async def test_not_ready_with_another_pepper(engine: AsyncEngine, settings: Settings) -> None:
    other = dataclasses.replace(settings, pepper=Secret(bytes(32)))
    async with api_client(other, engine) as client:
        error = await error_of(await client.get("/readyz"), 503)
    assert error["code"] == "pepper_mismatch" and "EXPOSURE_PEPPER" in error["message"]


async def test_not_ready_when_unreachable(tmp_path: Path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    settings = load_settings(environment(url), env_file=tmp_path / "absent.env")
    async with db.open_engine(url) as unreachable:
        async with api_client(settings, unreachable) as client:
            assert (await client.get("/healthz")).status == 200
            error = await error_of(await client.get("/readyz"), 503)
            assert error["code"] == "database_unavailable"
            failed = await client.get("/v1/exposures", headers=bearer(_SOME_TOKEN))
            assert (await error_of(failed, 503))["code"] == "database_unavailable"
            metrics = await (await client.get("/metrics")).text()
    assert samples(metrics, "exposure_database_up") == {(): 0}


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_metrics_read_exposures_at_scrape_time(
    engine: AsyncEngine, settings: Settings
) -> None:
    for customer in ("C1", "C2"):
        await add_customer(engine, customer)
    ids = [await add_exposure(engine, "C1", first_seen=T0, kind=k) for k in ("email", "phone")]
    await add_exposure(engine, "C2", first_seen=T0, action="notify")
    await add_exposure(engine, "C2", first_seen=T0, action="none", state="dismissed", kind="phone")
    INGEST_LINES.inc(7)
    token = await make_token(engine, Scope.RESOLVE)
    async with api_client(settings, engine) as client:
        response = await client.get("/metrics")  # open: no token
        assert response.status == 200 and response.content_type == "text/plain"
        before = await response.text()
        await client.post(
            f"/v1/exposures/{ids[0]}/resolution",
            json={"resolution": "reset_completed", "resolved_by": "reset-service"},
            headers=bearer(token),
        )
        after = await (await client.get("/metrics")).text()

    def exposures(text: str, action: str, state: str) -> float:
        return samples(text, "exposure_exposures")[(("action", action), ("state", state))]

    assert exposures(before, "force_reset", "open") == 2
    assert exposures(before, "notify", "open") == 1
    assert exposures(before, "none", "dismissed") == 1
    assert exposures(before, "force_reset", "reset_completed") == 0  # zero series present
    assert exposures(after, "force_reset", "open") == 1
    assert exposures(after, "force_reset", "reset_completed") == 1
    assert samples(before, "exposure_customers_enrolled") == {(): 2}
    assert samples(before, "exposure_database_up") == {(): 1}
    assert samples(before, "exposure_ingest_lines_total")[()] >= 7  # the process registry


async def test_exposure_api_serves_until_sigterm(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **environment(database_url, EXPOSURE_API_LISTEN=f"127.0.0.1:{port}"),
    }
    process = subprocess.Popen(  # noqa: ASYNC220  (a long-lived child, polled below)
        [str(EXPOSURE_SCRIPT), "api"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        await eventually(lambda: answers(f"http://127.0.0.1:{port}"), what="exposure api")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert f"http://127.0.0.1:{port}" in stderr and "stopped" in stderr


async def test_metrics_count_open_cases_and_forced_resets_past_the_sla(
    engine: AsyncEngine, settings: Settings
) -> None:
    """Open cases by action, and the forced resets open past the 24-hour SLA (the gauge an
    on-call alert watches); resolved cases count in neither."""
    now = utcnow()
    for customer in ("S1", "S2", "S3", "S4"):
        await add_customer(engine, customer)
    late = await add_exposure(engine, "S1", first_seen=now - timedelta(hours=30))
    await add_case(engine, "S1", [late], opened_at=now - timedelta(hours=30))
    fresh = await add_exposure(engine, "S2", first_seen=now - timedelta(hours=1))
    await add_case(engine, "S2", [fresh], opened_at=now - timedelta(hours=1))
    notify = await add_exposure(engine, "S3", first_seen=now, action="notify")
    await add_case(engine, "S3", [notify], opened_at=now, action="notify")
    done = await add_exposure(engine, "S4", first_seen=now - timedelta(hours=50))
    await add_case(
        engine,
        "S4",
        [done],
        opened_at=now - timedelta(hours=50),
        state="resolved",
        resolution="reset_completed",
        resolved_at=now - timedelta(hours=40),
    )
    token = await make_token(engine, Scope.RESOLVE)
    async with api_client(settings, engine) as client:
        before = await (await client.get("/metrics")).text()
        await client.post(
            f"/v1/exposures/{late}/resolution",
            json={"resolution": "reset_completed", "resolved_by": "reset-service"},
            headers=bearer(token),
        )
        after = await (await client.get("/metrics")).text()
    assert samples(before, "exposure_cases_open") == {
        (("action", "force_reset"),): 2,
        (("action", "notify"),): 1,
        (("action", "none"),): 0,
    }
    assert samples(before, "exposure_cases_overdue") == {(): 1}
    assert samples(after, "exposure_cases_open")[(("action", "force_reset"),)] == 1
    assert samples(after, "exposure_cases_overdue") == {(): 0}


async def test_metrics_show_the_backlog_whichever_process_made_it(
    engine: AsyncEngine, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Counters are per process; the backlog gauges are read from the database at scrape
    time, so the API shows what a CLI ingest or another replica left waiting."""
    cases = policy_cases()
    env = environment(database_url, EXPOSURE_FOLDER_PATH=str(tmp_path / "inbox"))
    (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
    run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
    (tmp_path / "inbox").mkdir()
    lines = [line for case in cases for line in case.lines]
    (tmp_path / "inbox" / "leak.txt").write_text("\n".join(lines) + "\n")
    run_cli("connectors", "run", "folder", "--once", env=env, cwd=tmp_path)
    async with engine.begin() as conn:
        first = select(OutboxEvent.id).order_by(OutboxEvent.id).limit(1)
        dead = (await conn.execute(first)).scalar_one()
        await conn.execute(update(OutboxEvent).where(OutboxEvent.id == dead).values(state="dead"))
        await conn.execute(
            insert(WebhookEndpoint).values(
                url="https://reset.example/hook", disabled_at=T0, disabled_reason="HTTP 410 Gone"
            )
        )
    events = sum(case.action != "none" for case in cases)
    async with api_client(settings, engine) as client:
        text = await (await client.get("/metrics")).text()
    outbox = samples(text, "exposure_outbox_events")
    by_state = {dict(labels)["state"]: value for labels, value in outbox.items()}
    assert by_state == {"pending": events - 1, "dead": 1, "failed": 0, "delivered": 0}
    assert samples(text, "exposure_outbox_oldest_undelivered_seconds")[()] > 0
    assert samples(text, "exposure_webhook_endpoints_disabled") == {(): 1}
    # (The API folds staged digests as it starts: the backlog may be gone already.)
    assert samples(text, "exposure_corpus_staged_digests")[()] >= 0
    assert samples(text, "exposure_corpus_unsettled_records")[()] >= 0
    success = samples(text, "exposure_connector_last_success_timestamp_seconds")
    [(labels, finished)] = success.items()
    assert labels == (("connector", "folder"),) and finished > T0.timestamp()
