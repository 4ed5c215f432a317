"""`exposure deliver` end to end against real receivers on 127.0.0.1, on SQLite and PostgreSQL.

Every request is verified with the ``standardwebhooks`` reference library by the receiver; time
is moved by rewriting ``next_attempt_at`` / ``created_at`` rather than by sleeping.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store.models import WebhookEndpoint
from tests.integration.delivery_helpers import (
    age_events,
    attempt_rows,
    cli,
    deliver,
    make_due,
    outbox_rows,
    plaintext_values,
    seed,
    webhook_env,
)
from tests.integration.receiver import (
    NEW_SECRET,
    OLD_SECRET,
    OTHER_SECRET,
    Receiver,
    Reply,
    always,
    serving,
)
from tests.waiting import eventually


async def test_delivers_signed_payloads_exactly_as_stored(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    cases = seed(database_url, tmp_path)
    before = await outbox_rows(engine)
    assert len(before) >= 8 and all(row["state"] == "pending" for row in before)
    async with serving(Receiver()) as receiver:
        summary, _ = await deliver(webhook_env(database_url, receiver.url), tmp_path)

    assert summary["delivered"] == len(before)
    assert (summary["retried"], summary["dead"], summary["disabled"], summary["waiting"]) == (
        0,
        0,
        0,
        0,
    )
    assert summary["endpoint"]["state"] == "ok"
    assert len(receiver.verified()) == len(receiver.seen) == len(before)
    by_id = {seen.webhook_id: seen for seen in receiver.seen}
    for row in before:
        seen = by_id[row["event_id"]]
        assert seen.body == row["payload"].encode()  # byte for byte what ingest stored
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["User-Agent"].startswith("exposure/")
        assert abs(seen.timestamp - datetime.now(UTC).timestamp()) < 120
    after = await outbox_rows(engine)
    assert all(row["state"] == "delivered" and row["attempts"] == 1 for row in after)
    assert all(row["delivered_at"] >= row["created_at"] for row in after)
    assert all(row["lease_owner"] is None and row["last_status"] == 200 for row in after)
    attempts = await attempt_rows(engine)
    assert [(a["attempt"], a["status_code"], a["outcome"]) for a in attempts] == [
        (1, 200, "delivered")
    ] * len(before)
    assert all(a["latency_ms"] > 0 and a["error"] is None for a in attempts)

    # The contract: no plaintext identifier, no password and no link in any body.
    bodies = b"".join(seen.body for seen in receiver.seen).decode()
    for value in plaintext_values(cases):
        assert value not in bodies
    assert "http" not in bodies and "P01" in bodies


async def test_503_is_retried_under_the_same_webhook_id(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    events = await outbox_rows(engine)
    receiver = Receiver(plan=lambda _id, n: Reply(503 if n == 0 else 200))
    async with serving(receiver):
        env = webhook_env(database_url, receiver.url)
        first, stderr = await deliver(env, tmp_path)
        assert first["retried"] == len(events) and first["delivered"] == 0
        assert first["waiting"] == len(events)
        assert "will be retried" in stderr and "HTTP 503" in stderr
        pending = await outbox_rows(engine)
        sent_at = {a["event_id"]: a["attempted_at"] for a in await attempt_rows(engine)}
        for row in pending:
            assert row["state"] == "pending" and row["attempts"] == 1 and row["last_status"] == 503
            # First backoff: full jitter under 30 s, never less than the 1 s floor.
            wait = row["next_attempt_at"] - sent_at[row["event_id"]]
            assert timedelta(seconds=1) <= wait <= timedelta(seconds=31)
        # Nothing is sent before it is due.
        await make_due(engine, next_attempt_at=datetime.now(UTC) + timedelta(minutes=10))
        idle, _ = await deliver(env, tmp_path)
        assert idle["delivered"] == idle["retried"] == 0 and len(receiver.seen) == len(events)

        # webhook-timestamp has one-second resolution: the retry must be stamped later.
        first_sent = max(seen.timestamp for seen in receiver.seen)
        await eventually(lambda: time.time() >= first_sent + 1, what="the next second")
        await make_due(engine)
        second, _ = await deliver(env, tmp_path)
    assert second["delivered"] == len(events) and second["waiting"] == 0
    assert len(receiver.verified()) == 2 * len(events)
    for event_id, count in receiver.ids().items():
        assert count == 2
        first_try, retry = (s for s in receiver.seen if s.webhook_id == event_id)
        assert (first_try.reply.status, retry.reply.status) == (503, 200)
        assert retry.timestamp > first_try.timestamp
        assert first_try.headers["webhook-signature"] != retry.headers["webhook-signature"]
    history = await attempt_rows(engine)
    assert sorted((a["event_id"], a["attempt"], a["outcome"]) for a in history) == sorted(
        [(e["event_id"], 1, "retry") for e in events]
        + [(e["event_id"], 2, "delivered") for e in events]
    )


async def test_410_disables_endpoint_until_re_enabled(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    events = await outbox_rows(engine)
    receiver = Receiver(plan=always(410))
    async with serving(receiver):
        # A token in the query string must not reach the database, the logs or the output.
        env = webhook_env(database_url, receiver.url + "?token=q-secret-123")
        summary, stderr = await deliver(env, tmp_path, status=1)  # cron sees the failure
        assert summary["endpoint"]["state"] == "disabled" and summary["disabled"] >= 1
        assert summary["delivered"] == 0 and summary["waiting"] == len(events)
        assert "410 Gone" in stderr and "exposure deliveries enable-endpoint" in stderr
        # Only what was already in flight reached it: at most one concurrency window.
        assert 1 <= len(receiver.seen) <= 8 and receiver.seen[0].path_qs.endswith("q-secret-123")
        assert all(row["state"] == "pending" for row in await outbox_rows(engine))

        again, still = await deliver(env, tmp_path, status=1)  # disabled: still a failure
        assert still.splitlines()[-1].startswith("error: endpoint ")
        assert (
            again["endpoint"]["state"] == "disabled" and len(receiver.seen) == summary["disabled"]
        )
        listing = await cli("deliveries", env=env, cwd=tmp_path)
        assert "DISABLED" in listing.stderr and "enable-endpoint" in listing.stderr
        async with engine.connect() as conn:
            [endpoint] = (await conn.execute(select(WebhookEndpoint.__table__))).all()
        assert endpoint.url == receiver.url and endpoint.disabled_at is not None
        assert "410" in (endpoint.disabled_reason or "")

        receiver.plan = always(200)
        enabled = json.loads(
            (await cli("deliveries", "enable-endpoint", env=env, cwd=tmp_path)).stdout
        )
        assert enabled["enabled"] is True and enabled["waiting"] == len(events)
        final, _ = await deliver(env, tmp_path)
    output = stderr + listing.stdout + listing.stderr + json.dumps([summary, again, final, enabled])
    assert "q-secret-123" not in output
    assert final["delivered"] == len(events) and final["endpoint"]["state"] == "ok"
    delivered_ids = [s.webhook_id for s in receiver.seen if s.reply.status == 200]
    assert sorted(delivered_ids) == sorted(e["event_id"] for e in events)  # none lost, none twice
    history = await attempt_rows(engine)
    assert sum(a["outcome"] == "disabled" for a in history) == summary["disabled"]
    assert all("q-secret-123" not in (a["error"] or "") for a in history)


async def test_timeouts_are_retried(database_url: str, tmp_path: Path, engine: AsyncEngine) -> None:
    seed(database_url, tmp_path, None)
    events = await outbox_rows(engine)
    receiver = Receiver(plan=lambda _id, n: Reply(200, delay=1.5 if n == 0 else 0.0))
    async with serving(receiver):
        env = webhook_env(database_url, receiver.url, EXPOSURE_WEBHOOK_TIMEOUT="0.3")
        slow, _ = await deliver(env, tmp_path)
        assert slow["retried"] == len(events) and slow["delivered"] == 0
        rows = await outbox_rows(engine)
        assert all(r["last_status"] is None and "timed out" in r["last_error"] for r in rows)
        history = await attempt_rows(engine)
        assert all(a["outcome"] == "retry" and a["status_code"] is None for a in history)
        assert all(250 <= a["latency_ms"] < 1400 for a in history)  # cut at the timeout
        await make_due(engine)
        fast, _ = await deliver(env, tmp_path)
    assert fast["delivered"] == len(events)


async def test_retry_after_is_honoured(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    in_two_hours = datetime.now(UTC) + timedelta(hours=2)
    http_date = in_two_hours.strftime("%a, %d %b %Y %H:%M:%S GMT")

    turns = itertools.count()

    def plan(_id: str, _n: int) -> Reply:
        # Seconds for half the events, an HTTP date for the rest; both far beyond the backoff.
        if next(turns) % 2 == 0:
            return Reply(429, {"Retry-After": "3600"})
        return Reply(503, {"Retry-After": http_date})

    receiver = Receiver(plan=plan)
    async with serving(receiver):
        summary, _ = await deliver(webhook_env(database_url, receiver.url), tmp_path)
    assert summary["retried"] == len(receiver.seen) >= 2
    asked = {s.webhook_id: s.reply.headers["Retry-After"] for s in receiver.seen}
    assert set(asked.values()) == {"3600", http_date}
    for row in await outbox_rows(engine):
        if asked[row["event_id"]] == "3600":
            expected, status = datetime.now(UTC) + timedelta(hours=1), 429
        else:
            expected, status = in_two_hours.replace(microsecond=0), 503
        assert row["last_status"] == status
        assert abs((row["next_attempt_at"] - expected).total_seconds()) < 60


async def test_dead_letter_then_replay_one_and_all(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    receiver = Receiver(plan=always(500))
    async with serving(receiver):
        env = webhook_env(database_url, receiver.url, EXPOSURE_WEBHOOK_RETRY_HOURS="72")
        # Still inside the window: retried, and the next try is clamped to the window's end.
        await age_events(engine, 71.998)  # the window ends in ~7 s
        inside, _ = await deliver(env, tmp_path)
        assert inside["retried"] > 0 and inside["dead"] == 0
        for row in await outbox_rows(engine):
            assert row["next_attempt_at"] <= row["created_at"] + timedelta(hours=72)
        # Past the window: the next failure dead-letters.
        await age_events(engine, 73)
        await make_due(engine)
        summary, stderr = await deliver(env, tmp_path, status=1)
        events = await outbox_rows(engine)
        assert summary["dead"] == len(events) and summary["waiting"] == 0
        assert all(row["state"] == "dead" and row["attempts"] == 2 for row in events)
        assert "dead-lettered" in stderr and "replay --dead" in stderr
        listing = await cli(
            "deliveries", "--state", "dead", "--format", "jsonl", env=env, cwd=tmp_path
        )
        dead = [json.loads(line) for line in listing.stdout.splitlines()]
        assert sorted(d["event_id"] for d in dead) == sorted(e["event_id"] for e in events)
        assert all(d["last_status"] == 500 and d["last_error"] == "HTTP 500" for d in dead)

        # Replay one: pending and due now; its retry window restarts at the replay, so a
        # failing receiver makes it retry rather than die again at once.
        one = events[0]["event_id"]
        replayed = json.loads(
            (await cli("deliveries", "replay", one, env=env, cwd=tmp_path)).stdout
        )
        assert replayed["event_ids"] == [one]
        still_failing, _ = await deliver(env, tmp_path)
        assert (still_failing["retried"], still_failing["dead"]) == (1, 0)
        unknown = await cli("deliveries", "replay", "msg_nope", env=env, cwd=tmp_path, check=False)
        assert unknown.returncode == 1 and json.loads(unknown.stdout)["not_replayed"] == [
            "msg_nope"
        ]

        # Replay every dead one once the receiver is fixed.
        receiver.plan = always(200)
        everything = json.loads(
            (await cli("deliveries", "replay", "--dead", env=env, cwd=tmp_path)).stdout
        )
        assert everything["replayed"] == len(events) - 1 and one not in everything["event_ids"]
        await make_due(engine)
        final, _ = await deliver(env, tmp_path)
    assert final["delivered"] == len(events) and final["waiting"] == 0
    history = [a for a in await attempt_rows(engine) if a["event_id"] == one]
    assert [(a["attempt"], a["outcome"]) for a in history] == [
        (1, "retry"),
        (2, "dead"),
        (2, "replayed"),
        (3, "retry"),
        (4, "delivered"),
    ]
    shown = await cli("deliveries", "attempts", one, env=env, cwd=tmp_path)
    assert [json.loads(line)["outcome"] for line in shown.stdout.splitlines()][-1] == "delivered"


async def test_secret_rotation_both_receivers_verify(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    events = await outbox_rows(engine)
    old_only, new_only, stranger = (
        Receiver(secret=OLD_SECRET),
        Receiver(secret=NEW_SECRET),
        Receiver(secret=OTHER_SECRET),
    )
    rotation = {"EXPOSURE_WEBHOOK_SECRET": f"{NEW_SECRET} {OLD_SECRET}"}
    ids = [e["event_id"] for e in events]
    for receiver in (old_only, new_only, stranger):
        async with serving(receiver):
            env = webhook_env(database_url, receiver.url, **rotation)
            await cli("deliveries", "replay", *ids, env=env, cwd=tmp_path, check=False)
            await deliver(env, tmp_path)
    for receiver in (old_only, new_only):
        assert len(receiver.verified()) == len(receiver.seen) == len(events)
        assert all(len(s.headers["webhook-signature"].split(" ")) == 2 for s in receiver.seen)
    # The control: a receiver holding neither key verifies nothing (and answers 401).
    assert stranger.seen and not stranger.verified()
    assert all(row["last_status"] == 401 for row in await outbox_rows(engine))


async def test_no_url_configured_events_wait(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    events = await outbox_rows(engine)
    summary, stderr = await deliver(webhook_env(database_url, None), tmp_path)
    assert summary["endpoint"] == {"url": None, "state": "unconfigured"}
    assert summary["waiting"] == len(events) and summary["delivered"] == 0
    assert f"{len(events)} event(s) wait" in stderr and "EXPOSURE_WEBHOOK_URL" in stderr
    assert await outbox_rows(engine) == events and await attempt_rows(engine) == []


async def test_connection_errors_retry_without_leaking_the_url_query(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    seed(database_url, tmp_path)
    async with serving(Receiver()) as receiver:
        url = receiver.url
    # The receiver is gone: nothing listens on that port any more.
    env = webhook_env(database_url, url + "?sig=q-secret-456")
    summary, stderr = await deliver(env, tmp_path)
    assert summary["retried"] == len(await outbox_rows(engine)) > 0
    history = await attempt_rows(engine)
    assert all(a["status_code"] is None and a["error"].startswith("Client") for a in history)
    listing = await cli("deliveries", "--format", "jsonl", env=env, cwd=tmp_path)
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert all(r["state"] == "pending" and r["last_error"] for r in rows)
    text = stderr + listing.stdout + listing.stderr + json.dumps(history, default=str)
    assert "q-secret-456" not in text and "payload" not in rows[0]
