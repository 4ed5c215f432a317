"""Delivery benchmark: how fast ``Deliverer`` drains the outbox to a local receiver.

Seeds ``--events`` outbox rows (realistic exposure bodies) into a fresh SQLite database (and a
fresh PostgreSQL database when ``EXPOSURE_BENCH_POSTGRES_URL`` points at a server where it may
create one), runs a receiver on 127.0.0.1 in a separate process (it answers 200), and drains
the outbox with ``Deliverer.drain``.

Baseline, in the same run and against the same receiver: a bare aiohttp client POSTing the
same bodies with the same concurrency (``MAX_IN_FLIGHT``) as fast as it can, with no signing,
no database and no bookkeeping: the floor any sender pays for the HTTP exchanges themselves.

Reported per backend: deliveries/s, p50/p99 from the row's ``created_at`` to its 2xx (every row
is created at the start, so this is dominated by queueing behind earlier rows), and the ratios
against the baseline. Each run repeats ``--rounds`` times and keeps its best round.

    python bench/delivery_bench.py [--events 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import make_url

from exposure.delivery.payloads import ExposureFacts, exposure_event, new_event_id
from exposure.delivery.sender import MAX_IN_FLIGHT, Deliverer, open_session
from exposure.settings import load_settings
from exposure.store import db
from exposure.store.models import DeliveryAttempt, OutboxEvent

PEPPER = "ab" * 32
SECRET = "whsec_" + base64.b64encode(b"bench-signing-key-0123456789abcd").decode()


def body(n: int, now: datetime) -> str:
    facts = ExposureFacts(
        exposure_id=str(uuid.uuid4()),
        customer_id=f"C{n:08d}",
        action="force_reset",
        severity="critical",
        password_status="live",  # noqa: S106  (a status word, not a password)
        identifier_kind="email",
        leak_type="combo",
        site_domain=None,
        source="bench",
        first_seen=now,
        reason="leaked password is the customer's current password",
        recommended_actions=("reset_password", "revoke_sessions"),
    )
    _, payload = exposure_event(facts, now=now)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---- the receiver, in its own process so it does not share the sender's event loop ----------


def serve(delay: float) -> None:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        if delay:
            await asyncio.sleep(delay)
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---- the two senders -------------------------------------------------------------------------


async def baseline(url: str, bodies: list[str]) -> dict[str, float]:
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    done: list[float] = []
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()

        async def post(text: str) -> None:
            async with (
                gate,
                session.post(
                    url, data=text.encode(), headers={"Content-Type": "application/json"}
                ) as response,
            ):
                await response.read()
                if not 200 <= response.status < 300:
                    raise RuntimeError(f"receiver answered {response.status}")
                done.append(time.perf_counter() - start)

        await asyncio.gather(*(post(text) for text in bodies))
        elapsed = time.perf_counter() - start
    return summary(len(bodies), elapsed, done)


async def seed(database_url: str, events: int) -> None:
    now = datetime.now(UTC)
    async with db.open_engine(database_url) as engine:
        await db.upgrade(engine, bytes.fromhex(PEPPER))
        async with engine.begin() as conn:
            await conn.execute(delete(DeliveryAttempt))
            await conn.execute(delete(OutboxEvent))
            rows = [
                {
                    "event_id": new_event_id(),
                    "event_type": "exposure.force_reset",
                    "payload": body(n, now),
                    "state": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for n in range(events)
            ]
            for start in range(0, events, 1000):
                await conn.execute(insert(OutboxEvent), rows[start : start + 1000])


async def deliverer(database_url: str, url: str, events: int) -> dict[str, float]:
    settings = load_settings(
        {
            "EXPOSURE_DATABASE_URL": database_url,
            "EXPOSURE_PEPPER": PEPPER,
            "EXPOSURE_WEBHOOK_URL": url,
            "EXPOSURE_WEBHOOK_SECRET": SECRET,
        },
        env_file=Path("/nonexistent/.env"),
    )
    await seed(database_url, events)
    async with db.open_engine(database_url) as engine, open_session(settings) as session:
        async with engine.begin() as conn:  # "created" now: the clock starts here
            await conn.execute(update(OutboxEvent).values(created_at=datetime.now(UTC)))
        start = time.perf_counter()
        report = await Deliverer(engine, settings, session).drain()
        elapsed = time.perf_counter() - start
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(OutboxEvent.created_at, OutboxEvent.delivered_at))
            ).all()
    if report.delivered != events:
        raise RuntimeError(f"not everything was delivered: {report}")
    waits = [(d - c).total_seconds() for c, d in rows if d is not None]
    return summary(events, elapsed, waits)


def summary(events: int, elapsed: float, waits: list[float]) -> dict[str, float]:
    return {
        "seconds": round(elapsed, 3),
        "per_second": round(events / elapsed),
        "p50_ms": round(percentile(waits, 0.50) * 1000, 1),
        "p99_ms": round(percentile(waits, 0.99) * 1000, 1),
        "mean_ms": round(statistics.fmean(waits) * 1000, 1),
    }


async def fresh_postgres(url: str) -> tuple[str, str]:
    name = f"exposure_bench_{os.getpid()}"
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(url).set(database=name).render_as_string(hide_password=False), admin


async def drop_postgres(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda run: run["per_second"])


async def bench(args: argparse.Namespace, receiver: str, work: Path) -> dict[str, Any]:
    now = datetime.now(UTC) - timedelta(seconds=1)
    bodies = [body(n, now) for n in range(args.events)]
    backends = {"sqlite": f"sqlite+aiosqlite:///{work / 'bench.db'}"}
    pg_url = os.environ.get("EXPOSURE_BENCH_POSTGRES_URL")
    admin = None
    if pg_url:
        backends["postgresql"], admin = await fresh_postgres(pg_url)
    results: dict[str, list[dict[str, float]]] = {"baseline": []}
    try:
        for _ in range(args.rounds):  # interleaved, so a noisy moment hits every contender
            results["baseline"].append(await baseline(receiver, bodies))
            for name, url in backends.items():
                results.setdefault(name, []).append(await deliverer(url, receiver, args.events))
    finally:
        if admin is not None:
            await drop_postgres(admin, make_url(backends["postgresql"]).database or "")
    floor = best(results["baseline"])
    report: dict[str, Any] = {
        "events": args.events,
        "concurrency": MAX_IN_FLIGHT,
        "rounds": args.rounds,
        "receiver_delay_ms": args.receiver_delay_ms,
        "baseline_bare_aiohttp": floor,
    }
    for name in backends:
        figures = best(results[name])
        report[f"deliverer_{name}"] = figures | {
            "throughput_vs_baseline": round(figures["per_second"] / floor["per_second"], 3),
            "p50_vs_baseline": round(figures["p50_ms"] / floor["p50_ms"], 2),
            "p99_vs_baseline": round(figures["p99_ms"] / floor["p99_ms"], 2),
        }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--receiver-delay-ms",
        type=float,
        default=0.0,
        help="the receiver waits this long before answering (a remote reset service's latency)",
    )
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        serve(args.receiver_delay_ms / 1000)
        return 0
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--receiver",
            "--receiver-delay-ms",
            str(args.receiver_delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline()) if server.stdout else 0
        with tempfile.TemporaryDirectory(prefix="delivery-bench-") as tmp:
            report = asyncio.run(bench(args, f"http://127.0.0.1:{port}/hook", Path(tmp)))
    finally:
        server.terminate()
        server.wait()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
