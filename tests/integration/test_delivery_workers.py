"""Several senders at once: leases, SKIP LOCKED claims, the daemon loop and its shutdown."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.delivery.payloads import report_webhook
from exposure.delivery.sender import MAX_IN_FLIGHT, Deliverer, EndpointState
from exposure.errors import ConfigurationError
from exposure.metrics import REGISTRY
from exposure.settings import Settings, load_settings
from exposure.store import outbox as queries
from exposure.store.models import OutboxEvent
from tests.conftest import only_postgres
from tests.integration.delivery_helpers import (
    attempt_rows,
    cli,
    deliver,
    outbox_rows,
    seed,
    webhook_env,
)
from tests.integration.receiver import Receiver, Reply, serving
from tests.leakgen import OLD, Case
from tests.waiting import eventually


def _settings(database_url: str, tmp_path: Path, url: str | None, **extra: str) -> Settings:
    return load_settings(webhook_env(database_url, url, **extra), env_file=tmp_path / "absent.env")


@only_postgres  # several writers need PostgreSQL
async def test_two_processes_send_each_event_exactly_once(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    emails = [f"kabu.worker{n}@example.jp" for n in range(200)]
    cases = [
        Case(f"K{n:04d}", email, f"KW{n:06d}", None, (f"{email}:{OLD}",), "notify", "unknown")
        for n, email in enumerate(emails)
    ]
    seed(database_url, tmp_path, cases)
    events = await outbox_rows(engine)
    assert len(events) == 200
    # Requests wait until more are in flight than one process may send (MAX_IN_FLIGHT): proof
    # that both processes were sending at the same moment, not one after the other.
    receiver = Receiver(plan=lambda _id, _n: Reply(200, delay=0.02), gate_above=MAX_IN_FLIGHT)
    async with serving(receiver):
        env = webhook_env(database_url, receiver.url)
        (one, _), (two, _) = await asyncio.gather(
            deliver(env, tmp_path, process=True), deliver(env, tmp_path, process=True)
        )
    assert receiver.max_in_flight > MAX_IN_FLIGHT
    assert one["delivered"] > 0 and two["delivered"] > 0
    assert one["delivered"] + two["delivered"] == 200
    counts = receiver.ids()
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert len(receiver.verified()) == 200
    assert all(row["state"] == "delivered" for row in await outbox_rows(engine))
    assert len(await attempt_rows(engine)) == 200


async def test_claims_are_disjoint_and_a_crashed_senders_lease_expires(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    events = await outbox_rows(engine)
    now = datetime.now(UTC)
    claim = {"now": now, "due_by": now, "lease_until": now + timedelta(hours=1), "limit": 3}
    async with engine.begin() as conn:
        first = await queries.claim_due(conn, owner="sender-a", **claim)
    async with engine.begin() as conn:
        second = await queries.claim_due(conn, owner="sender-b", **claim)
    assert len(first) == len(second) == 3
    assert not {e.id for e in first} & {e.id for e in second}
    leased = {e.event_id for e in [*first, *second]}

    async with serving(Receiver()) as receiver:
        env = webhook_env(database_url, receiver.url)
        summary, _ = await deliver(env, tmp_path)
        # Both "senders" crashed holding their leases: their rows wait for the lease to end.
        assert summary["delivered"] == len(events) - 6 and summary["waiting"] == 6
        assert not leased & set(receiver.ids())
        async with engine.begin() as conn:
            await conn.execute(
                update(OutboxEvent)
                .where(OutboxEvent.lease_owner.is_not(None))
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        after, _ = await deliver(env, tmp_path)
    assert after["delivered"] == 6 and after["waiting"] == 0
    assert set(receiver.ids()) == {e["event_id"] for e in events}
    assert set(receiver.ids().values()) == {1}


async def test_daemon_loop_bounded_concurrency_metrics_and_graceful_stop(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    total = len(await outbox_rows(engine))
    assert total > MAX_IN_FLIGHT

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    delivered_before = sample("exposure_deliveries_total", outcome="delivered")
    latency_before = sample("exposure_delivery_latency_seconds_count")
    receiver = Receiver(plan=lambda _id, _n: Reply(200, delay=0.4))
    async with serving(receiver), aiohttp.ClientSession() as session:
        deliverer = Deliverer(engine, _settings(database_url, tmp_path, receiver.url), session)
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop, idle_seconds=0.05))
        await eventually(lambda: len(receiver.seen) >= 1, every=0.005)
        stop.set()  # mid-round: the first window is in flight, the rest not yet started
        await asyncio.wait_for(task, 10)
        in_flight = len(receiver.seen)
        rows = await outbox_rows(engine)
        # Everything that was sent got recorded before run() returned; nothing else was sent.
        assert 1 <= in_flight <= MAX_IN_FLIGHT
        assert sum(r["state"] == "delivered" for r in rows) == in_flight
        waiting = [r for r in rows if r["state"] == "pending"]
        assert len(waiting) == total - in_flight
        assert all(r["lease_owner"] is None and r["attempts"] == 0 for r in waiting)

        # Started again, it drains the rest and then idles.
        stop = asyncio.Event()
        task = asyncio.create_task(deliverer.run(stop, idle_seconds=0.05))
        await eventually(lambda: len(receiver.seen) == total)

        async def all_delivered() -> bool:  # the last round's records land after its replies
            return all(r["state"] == "delivered" for r in await outbox_rows(engine))

        await eventually(all_delivered, within=10)
        stop.set()
        await asyncio.wait_for(task, 10)
        idle = await deliverer.deliver_due()
    assert idle.claimed == 0 and idle.endpoint is EndpointState.OK
    assert receiver.max_in_flight <= MAX_IN_FLIGHT
    assert all(r["state"] == "delivered" for r in await outbox_rows(engine))
    assert sample("exposure_deliveries_total", outcome="delivered") - delivered_before == total
    assert sample("exposure_delivery_latency_seconds_count") - latency_before == total


async def test_webhook_url_without_a_secret_is_refused(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    settings = _settings(
        database_url, tmp_path, "http://127.0.0.1:9/hook", EXPOSURE_WEBHOOK_SECRET=""
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match="EXPOSURE_WEBHOOK_SECRET"):
            Deliverer(engine, settings, session)
    env = webhook_env(database_url, "http://127.0.0.1:9/hook", EXPOSURE_WEBHOOK_SECRET="")
    refused = await cli("deliver", env=env, cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "EXPOSURE_WEBHOOK_SECRET" in refused.stderr


async def test_weekly_report_event_is_queued_once_and_carries_only_counts(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    figures = {
        "week": "2025-W20",
        "period": {"start": "2025-05-11T15:00:00Z", "end": "2025-05-18T15:00:00Z"},
        "headline": {"new_exposures": 12, "resets_confirmed": 9},
        "sla": {"breaches": [{"customer_id": "C-SLA-LEAK", "exposure_id": "x"}]},
    }
    async with engine.begin() as conn:
        event = report_webhook("2025-W20", figures, now=utcnow())
        assert await queries.enqueue_once(conn, event, now=utcnow()) is True
    async with engine.begin() as conn:  # another replica, or a restart: nothing new
        again = report_webhook("2025-W20", figures, now=utcnow())
        assert await queries.enqueue_once(conn, again, now=utcnow()) is False
    [row] = await outbox_rows(engine)
    assert row["event_type"] == "report.weekly" and row["exposure_id"] is None
    async with serving(Receiver()) as receiver, aiohttp.ClientSession() as session:
        settings = _settings(database_url, tmp_path, receiver.url)
        report = await Deliverer(engine, settings, session).deliver_due()
    assert report.delivered == 1
    [seen] = receiver.verified()
    body = json.loads(seen.body)
    assert body["type"] == "report.weekly" and body["data"]["week"] == "2025-W20"
    assert body["data"]["headline"] == {"new_exposures": 12, "resets_confirmed": 9}
    assert "C-SLA-LEAK" not in seen.body.decode() and "http" not in seen.body.decode()
