"""``exposure demo``: the whole flow on a synthetic broker, in a throw-away directory.

Invented customers (with argon2 hashes) are enrolled, invented leaks in several formats are
ingested, and the resulting forced-reset notifications are delivered, signed, to a receiver on
127.0.0.1 that checks each signature, exactly as the broker's reset service would. Nothing
here is real data, and nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from exposure import JsonObject, JsonValue
from exposure.cli.render import write_exposures
from exposure.customers import service as customer_service
from exposure.customers.enrolment import Enroller
from exposure.delivery.sender import Deliverer, DeliveryReport
from exposure.delivery.signing import signature
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings, load_settings
from exposure.store import db
from exposure.store.audit import Actor
from exposure.store.exposures import iter_exposures

BROKER = "demo-sec.example"
# (customer id, e-mail, login id, current password or None)
CUSTOMERS = (
    ("D0001", "sakura.demo@example.jp", "DEMO0001", "Sakura#2025"),
    ("D0002", "momiji.demo@example.jp", "DEMO0002", "Momiji!77"),
    ("D0003", "fuji.demo@gmail.com", "DEMO0003", None),
    ("D0004", "hanako.demo@example.jp", "DEMO0004", "Hanako*88"),
    ("D0005", "taro.demo@example.jp", "DEMO0005", "Taro-1234"),
)


def _dumps(folder: Path) -> list[Path]:
    """Invented leaks in four shapes: a combo list, URL:login:password lines, a stealer-log
    archive and an Excel-style CP932 CSV."""
    combo = folder / "combo-list.txt"
    combo.write_text(
        "# free combos 2025\nSAKURA.DEMO@example.jp:Sakura#2025\nmomiji.demo@example.jp:OldPass1\n"
        "nobody.at.all@example.org:whatever\n",
        "utf-8",
    )
    ulp = folder / "ulp.txt"
    ulp.write_text(f"https://trade.{BROKER}/login:DEMO0004:Hanako*88\n", "utf-8")
    stealer = folder / "stealer-logs.zip"
    with zipfile.ZipFile(stealer, "w") as archive:
        machine = "JP[DEMO0000000] [2025-05-01]"
        archive.writestr(
            f"{machine}/Passwords.txt",
            f"URL: https://trade.{BROKER}/member/login\nUsername: DEMO0005\nPassword: NOT_SAVED\n",
        )
        archive.writestr(
            f"{machine}/Cookies/Chrome.txt",
            f".trade.{BROKER}\tTRUE\t/\tTRUE\t1767225600\tSESSION\tinvented\n",
        )
    table = folder / "breach.csv"
    table.write_bytes("メールアドレス,パスワード\nfujidemo@gmail.com,Summer2024\n".encode("cp932"))
    return [combo, ulp, stealer, table]


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    """One request the stand-in reset service got: its id, whether the signature verified,
    and the body it carried."""

    webhook_id: str
    verified: bool
    body: JsonValue


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """What the demo found and sent (the webhook bodies are invented data)."""

    exposures: Mapping[str, int]
    records: int
    delivery: DeliveryReport
    webhooks: tuple[ReceivedWebhook, ...]

    def as_json(self) -> JsonObject:
        return {
            "exposures": dict(self.exposures),
            "records": self.records,
            "delivery": self.delivery.as_dict(),
            "webhooks": [
                {"webhook-id": w.webhook_id, "verified": w.verified, "body": w.body}
                for w in self.webhooks
            ],
        }


async def _receiver(key: bytes, received: list[ReceivedWebhook]) -> tuple[web.AppRunner, str]:
    """A stand-in for the broker's reset service: checks each signature, keeps each body."""

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = signature(
            key, request.headers["webhook-id"], int(request.headers["webhook-timestamp"]), body
        )
        presented = request.headers["webhook-signature"].split()
        verified = any(hmac.compare_digest(expected, sig) for sig in presented)
        received.append(ReceivedWebhook(request.headers["webhook-id"], verified, json.loads(body)))
        return web.Response(status=204 if verified else 401)

    app = web.Application()
    app.router.add_post("/reset-hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/reset-hook"


async def run_demo(say: Callable[[str], None]) -> DemoResult:
    """Run the demo; narrate with ``say``; return the summary (with the webhook bodies)."""
    key = secrets.token_bytes(24)
    received: list[ReceivedWebhook] = []
    runner, url = await _receiver(key, received)
    try:
        with tempfile.TemporaryDirectory(prefix="exposure-demo-") as tmp:
            work = Path(tmp)
            settings = load_settings(
                {
                    "EXPOSURE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'demo.db'}",
                    "EXPOSURE_PEPPER": secrets.token_hex(32),
                    "EXPOSURE_BROKER_DOMAINS": BROKER,
                    "EXPOSURE_WEBHOOK_URL": url,
                    "EXPOSURE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(key).decode(),
                },
                env_file=work / ".env",
            )
            return await _flow(settings, work, say, received)
    finally:
        await runner.cleanup()


async def _flow(
    settings: Settings, work: Path, say: Callable[[str], None], received: list[ReceivedWebhook]
) -> DemoResult:
    pepper = settings.pepper.reveal()
    async with db.open_engine(settings.database_url) as engine:
        await db.upgrade(engine, pepper)
        say(
            f"1. Enrolling {len(CUSTOMERS)} invented customers of the broker {BROKER} "
            "(keyed fingerprints and argon2 hashes only)"
        )
        hasher = PasswordHasher()
        records = [
            {
                "customer_id": cid,
                "email": email,
                "login_id": login,
                "password_hash": hasher.hash(pw) if pw else None,
            }
            for cid, email, login, pw in CUSTOMERS
        ]
        enroller = Enroller(pepper, login_id_case_sensitive=False, phone_region="JP")
        await customer_service.enrol(
            engine, enroller.read_records(records), actor=Actor.cli(), source="demo"
        )
        dumps = _dumps(work)
        say(f"2. Ingesting {len(dumps)} invented dumps: " + ", ".join(p.name for p in dumps))
        ingested = []
        async with PasswordVerifier() as verifier:
            ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
            for path in dumps:
                ingested.append(await ingestor.ingest(path, source="demo"))
        async with engine.connect() as conn:
            rows = [row async for row in iter_exposures(conn)]
        say("3. Exposures found:")
        table = io.StringIO()
        write_exposures(rows, "table", table)
        say(table.getvalue().rstrip())
        say("4. Delivering signed webhooks to a stand-in reset service on 127.0.0.1")
        async with aiohttp.ClientSession() as session:
            report = await Deliverer(engine, settings, session).drain()
    say(
        f"   {len(received)} webhook(s) received, "
        f"{sum(r.verified for r in received)} with a valid signature"
    )
    return DemoResult(
        exposures={
            a: sum(r["action"] == a for r in rows) for a in ("force_reset", "notify", "none")
        },
        records=sum(r.records for r in ingested),
        delivery=report,
        webhooks=tuple(received),
    )
