"""Verdicts stream to the store as verifications complete (real SQLite and PostgreSQL, a real
receiver on 127.0.0.1): the first forced reset of a batch is committed and delivered while the
rest of it is still being verified, broker-site leaks first, and tweak work never holds a live
match's webhook back."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import argon2
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.delivery.sender import Deliverer
from exposure.ingest.pipeline import Ingestor
from exposure.passwords import verifier as passwords
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import load_settings
from exposure.store import db
from exposure.store.models import Customer, Exposure, IngestRun, OutboxEvent, Sighting
from tests.cli import run_cli
from tests.conftest import TEST_PEPPER, environment
from tests.integration.receiver import NEW_SECRET, Receiver, serving
from tests.leakgen import BROKER, HEADER
from tests.waiting import eventually

# Slow enough that a batch's verifications take a while on one worker (a few ms each), so
# what the store holds meanwhile can be looked at.
SLOW = argon2.PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)


def _email(n: int) -> str:
    return f"stream.user{n}@example.jp"


def _enrol(database_url: str, tmp_path: Path, passwords_by_customer: dict[int, str]) -> None:
    rows = "".join(
        f"S{n:04d},{_email(n)},,,{SLOW.hash(pw)}\n" for n, pw in passwords_by_customer.items()
    )
    (tmp_path / "customers.csv").write_text(HEADER + rows, "utf-8")
    run_cli("enroll", str(tmp_path / "customers.csv"), env=environment(database_url), cwd=tmp_path)


async def test_first_decisions_commit_while_the_batch_is_verified_broker_site_first(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    customers = {n: f"Current#{n}" for n in range(40)}
    _enrol(database_url, tmp_path, customers)
    lines = [f"{_email(n)}:Current#{n}" for n in range(39)]  # all live, one batch
    lines.append(f"https://trade.{BROKER}/login:{_email(39)}:Current#39")  # read last
    dump = tmp_path / "mixed.txt"
    dump.write_text("\n".join(lines) + "\n", "utf-8")
    settings = load_settings(environment(database_url), env_file=tmp_path / "absent.env")

    async def committed() -> int:
        async with engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(Exposure))).scalar_one()
            )

    async with PasswordVerifier(workers=1) as verifier:
        ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
        ingesting = asyncio.create_task(ingestor.ingest(dump, source="manual"))
        await eventually(committed, within=60, every=0.005, what="a first exposure")
        seen_early, verified_then = await committed(), verifier.verified
        still_running = not ingesting.done()
        result = await ingesting

    assert still_running and 0 < seen_early < 40 and verified_then < 40
    assert result.stats.new_exposures["force_reset"] == 40
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxEvent.created_at, OutboxEvent.payload))).all()
    # The broker-site leak was read last but verified and announced first: its event is in
    # the first transaction that wrote any (answers that arrived while the writer was busy
    # share that transaction, and are written customer by customer).
    first_step = min(created for created, _ in rows)
    announced_first = {
        json.loads(payload)["data"]["customer_id"]
        for created, payload in rows
        if created == first_step
    }
    assert "S0039" in announced_first and len(announced_first) < 40


async def test_a_live_webhook_is_not_held_back_by_tweak_work(
    database_url: str, tmp_path: Path, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stale passwords (each with its tweaks to check) in the first batches, live ones in the
    last: no tweak verification starts while the live ones are verified (beyond the one
    already handed to the worker), and their forced resets reach the receiver while the
    tweak checks are still running."""
    stale = {n: f"Unrelated-{n}-current" for n in range(12)}
    live = {n: f"Live!Pass-{n}" for n in range(90, 96)}
    _enrol(database_url, tmp_path, {**stale, **live})
    lines = [f"{_email(n)}:Leaked{n}pw" for n in stale]
    lines += [f"{_email(n)}:{password}" for n, password in live.items()]
    dump = tmp_path / "dump.txt"
    dump.write_text("\n".join(lines) + "\n", "utf-8")

    started: list[str] = []  # what each verified pair was, in the order they started
    tweaks_ended: list[float] = []
    stale_leaked = {f"Leaked{n}pw" for n in stale}

    def kind_of(candidate: str) -> str:
        if candidate in live.values():
            return "live"
        return "first" if candidate in stale_leaked else "tweak"

    real = passwords._verify_one

    def observed(enrolled: str, candidate: str) -> Any:
        kind = kind_of(candidate)
        started.append(kind)
        try:
            return real(enrolled, candidate)
        finally:
            if kind == "tweak":
                tweaks_ended.append(time.monotonic())

    monkeypatch.setattr(passwords, "_verify_one", observed)
    windows: list[tuple[int, int]] = []  # each verify_many call with live pairs: its pairs' starts
    real_verify_many = PasswordVerifier.verify_many

    async def verify_many(self: PasswordVerifier, pairs: Any, **kwargs: Any) -> Any:
        before = len(started)
        try:
            return await real_verify_many(self, pairs, **kwargs)
        finally:
            if any(kind_of(candidate) == "live" for _, candidate in pairs):
                windows.append((before, len(started)))

    monkeypatch.setattr(PasswordVerifier, "verify_many", verify_many)
    arrivals: list[float] = []

    async with serving(Receiver()) as receiver:
        env = environment(
            database_url,
            EXPOSURE_WEBHOOK_URL=receiver.url,
            EXPOSURE_WEBHOOK_SECRET=NEW_SECRET,
            EXPOSURE_INGEST_BATCH_EVENTS="6",
        )
        settings = load_settings(env, env_file=tmp_path / "absent.env")
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session, PasswordVerifier(workers=1) as verifier:
            # A long poll: only the wake-up an ingest sends can make delivery prompt.
            deliverer = Deliverer(engine, settings, session)
            delivering = asyncio.create_task(deliverer.run(stop, idle_seconds=120))
            index = await Ingestor.load_index(engine)
            ingestor = Ingestor(engine, settings, index, verifier, on_events=deliverer.wake)
            ingesting = asyncio.create_task(ingestor.ingest(dump, source="manual"))

            def live_delivered() -> bool:
                if not arrivals and any(
                    json.loads(seen.body)["data"]["customer_id"] in ("S0090", "S0091")
                    for seen in receiver.verified()
                ):
                    arrivals.append(time.monotonic())
                return bool(arrivals)

            await eventually(live_delivered, within=60, every=0.005, what="a live webhook")
            result = await ingesting
            stop.set()
            await delivering

    assert result.stats.tweak_checks == len(stale) and len(tweaks_ended) > 100
    assert windows and sum(end - begin for begin, end in windows) >= len(live)
    for begin, end in windows:
        # Within the live pairs' verification: the one tweak already running, at most.
        last_live = max(i for i in range(begin, end) if started[i] == "live")
        assert started[begin:last_live].count("tweak") <= 1
    # Delivered while the tweak checks were still running, not after them.
    assert sum(at > arrivals[0] for at in tweaks_ended) > 20


async def test_the_delivery_loop_wakes_when_an_ingest_queues_events(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    _enrol(database_url, tmp_path, {1: "Wake#Up-1"})
    dump = tmp_path / "one.txt"
    dump.write_text(f"{_email(1)}:Wake#Up-1\n", "utf-8")
    async with serving(Receiver()) as receiver:
        env = environment(
            database_url, EXPOSURE_WEBHOOK_URL=receiver.url, EXPOSURE_WEBHOOK_SECRET=NEW_SECRET
        )
        settings = load_settings(env, env_file=tmp_path / "absent.env")
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session, PasswordVerifier(workers=1) as verifier:
            deliverer = Deliverer(engine, settings, session)
            delivering = asyncio.create_task(deliverer.run(stop, idle_seconds=600))
            await asyncio.sleep(0.2)  # the loop found nothing and waits (up to 600 s)
            ingestor = Ingestor(engine, settings, None, verifier, on_events=deliverer.wake)
            await ingestor.ingest(dump, source="manual")
            await eventually(lambda: len(receiver.verified()) == 1, within=30, what="the webhook")
            stop.set()
            await delivering


async def test_upgrading_keeps_every_row_and_accepts_tweaked(
    empty_database_url: str, tmp_path: Path
) -> None:
    """0010 widens the password-status check in place (SQLite cannot alter a CHECK, and a
    rebuilt table would take its sightings with it by cascade)."""
    now = datetime(2025, 5, 12, tzinfo=UTC)
    pepper = bytes.fromhex(TEST_PEPPER)

    def exposure(exposure_id: str, status: str) -> dict[str, Any]:
        return {
            "exposure_id": exposure_id,
            "customer_id": "C1",
            "identifier_kind": "email",
            "password_fp": exposure_id.encode(),
            "site_domain": "",
            "match_strength": "strict",
            "password_status": status,
            "action": "notify",
            "severity": "medium",
            "leak_type": "combo",
            "has_pin": False,
            "reason": "r",
            "recommended_actions": "[]",
            "source": "s",
            "identifier_hint": "h",
            "state": "open",
            "first_seen": now,
            "last_seen": now,
            "occurrences": 1,
            "decided_at": now,
        }

    async with db.open_engine(empty_database_url) as engine:
        await db.upgrade(engine, pepper, revision="0009")
        async with engine.begin() as conn:
            await conn.execute(insert(Customer).values(customer_id="C1"))
            run_id = (
                await conn.execute(
                    insert(IngestRun)
                    .values(source="s", input_name="i", content_key="k", state="completed")
                    .values(feeds_corpus=False)
                    .returning(IngestRun.id)
                )
            ).scalar_one()
            await conn.execute(insert(Exposure).values(**exposure("e1", "stale")))
            await conn.execute(
                insert(Sighting).values(
                    exposure_id="e1",
                    run_id=run_id,
                    ordinal=1,
                    source="s",
                    file="f",
                    line_no=1,
                    leak_type="combo",
                    seen_at=now,
                )
            )
        await db.upgrade(engine, pepper)
        async with engine.begin() as conn:
            assert (await conn.execute(select(func.count()).select_from(Sighting))).scalar() == 1
            await conn.execute(insert(Exposure).values(**exposure("e2", "tweaked")))
            if engine.dialect.name == "sqlite":
                check = (await conn.execute(text("PRAGMA integrity_check"))).scalar()
                assert check == "ok"
        with pytest.raises(IntegrityError, match=r"(?i)check"):
            async with engine.begin() as conn:
                await conn.execute(insert(Exposure).values(**exposure("e3", "bogus")))
