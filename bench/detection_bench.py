"""Detection latency: from a dump landing in the inbox to the webhook's 2xx, through the daemon.

A 100,000-line combo list (default) with H hitting customers is renamed into the watched inbox
of a running ``exposure run``; a receiver on 127.0.0.1 records when each webhook arrives.
Figures: time to the first and to the last webhook, p50/p99 over all of them. Baseline, in the
same run: the same dump handled by hand, ``exposure ingest`` then ``exposure deliver``, timed
from the start of the ingest to the last 2xx (what the daemon adds is scheduling and polling).

    python bench/detection_bench.py [--lines N] [--hits H]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

PEPPER = "cd" * 32


def write_inputs(work: Path, lines: int, hits: int) -> tuple[Path, Path]:
    rng = random.Random(5)
    customers = work / "customers.csv"
    with customers.open("w") as out:
        out.write("customer_id,email,login_id,phone,password_hash\n")
        for n in range(hits * 10):
            out.write(f"C{n:06d},bench.user{n}@example.jp,,,\n")
    hit_lines = set(rng.sample(range(lines), hits))
    dump = work / "dump.txt"
    with dump.open("w") as out:
        for i in range(lines):
            login = (
                f"bench.user{i % (hits * 10)}@example.jp" if i in hit_lines else f"x{i}@example.org"
            )
            out.write(f"{login}:pw{rng.randrange(10**9)}\n")
    return customers, dump


class Receiver:
    def __init__(self) -> None:
        self.arrivals: list[float] = []

    async def start(self) -> tuple[web.AppRunner, str]:
        async def hook(request: web.Request) -> web.Response:
            await request.read()
            self.arrivals.append(time.time())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


def env_for(work: Path, db: str, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "EXPOSURE_PEPPER": PEPPER,
        "EXPOSURE_DATABASE_URL": f"sqlite+aiosqlite:///{work / db}",
        "EXPOSURE_WEBHOOK_URL": url,
        "EXPOSURE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "EXPOSURE_API_LISTEN": "127.0.0.1:0",
        "EXPOSURE_FOLDER_PATH": str(work / "inbox"),
        "EXPOSURE_FOLDER_SCHEDULE": "every 1s",
        "EXPOSURE_FOLDER_SETTLE_SECONDS": "0.5",
        "EXPOSURE_LOG_FORMAT": "json",
    }


def figures(start: float, arrivals: list[float]) -> dict[str, Any]:
    latencies = sorted(t - start for t in arrivals)
    if not latencies:
        return {"webhooks": 0}
    return {
        "webhooks": len(latencies),
        "first_s": round(latencies[0], 2),
        "last_s": round(latencies[-1], 2),
        "p50_s": round(statistics.median(latencies), 2),
        "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }


async def command(exposure: str, *args: str, env: dict[str, str], cwd: Path) -> None:
    """Run a CLI command without blocking the loop: the receiver must keep answering."""
    process = await asyncio.create_subprocess_exec(
        exposure,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    if await process.wait() != 0:
        raise SystemExit(f"exposure {' '.join(args)} failed")


async def wait_for(receiver: Receiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.arrivals) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def run(lines: int, hits: int, exposure: str) -> dict[str, Any]:
    receiver = Receiver()
    runner, url = await receiver.start()
    try:
        with tempfile.TemporaryDirectory(prefix="detect-bench-") as tmp:
            work = Path(tmp)
            customers, dump = write_inputs(work, lines, hits)
            # Baseline: by hand.
            env = env_for(work, "manual.db", url)
            await command(exposure, "db", "upgrade", env=env, cwd=work)
            await command(exposure, "enroll", str(customers), env=env, cwd=work)
            start = time.time()
            await command(exposure, "ingest", str(dump), env=env, cwd=work)
            await command(exposure, "deliver", env=env, cwd=work)
            manual = figures(start, receiver.arrivals)
            receiver.arrivals.clear()

            # The daemon.
            env = env_for(work, "daemon.db", url)
            (work / "inbox").mkdir()
            await command(exposure, "db", "upgrade", env=env, cwd=work)
            await command(exposure, "enroll", str(customers), env=env, cwd=work)
            daemon = subprocess.Popen(
                [exposure, "run"], env=env, cwd=work, stderr=subprocess.DEVNULL
            )
            await asyncio.sleep(3)  # let it start
            staged = work / "inbox" / ".dump.txt.part"
            staged.write_bytes(dump.read_bytes())
            start = time.time()
            staged.rename(work / "inbox" / "dump.txt")
            await wait_for(receiver, hits, timeout=300)
            detected = figures(start, receiver.arrivals)
            daemon.send_signal(signal.SIGTERM)
            exit_code = daemon.wait(timeout=60)
    finally:
        await runner.cleanup()
    return {
        "lines": lines,
        "hits": hits,
        "daemon_inbox_to_2xx": detected,
        "baseline_manual_ingest_then_deliver": manual,
        "daemon_minus_baseline_last_s": round(
            detected.get("last_s", 0) - manual.get("last_s", 0), 2
        ),
        "daemon_exit_code": exit_code,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--hits", type=int, default=100)
    args = parser.parse_args()
    exposure = str(Path(sys.executable).with_name("exposure"))
    print(json.dumps(asyncio.run(run(args.lines, args.hits, exposure)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
