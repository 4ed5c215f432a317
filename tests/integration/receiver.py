"""A real webhook receiver on 127.0.0.1 for the delivery tests.

It verifies EVERY request with the Standard Webhooks reference library (``standardwebhooks``),
independently of our own signing code, records what it saw, and answers as the test scripts it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def whsec(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


OLD_SECRET = whsec(b"old-signing-key-for-tests-000001")
NEW_SECRET = whsec(b"new-signing-key-for-tests-000002")
OTHER_SECRET = whsec(b"a-key-the-sender-does-not-know-3")


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    webhook_id: str
    timestamp: int
    body: bytes
    headers: dict[str, str]
    path_qs: str
    verified: bool
    reply: Reply


Plan = Callable[[str, int], Reply]  # (webhook-id, how many times that id was seen before)


def always(status: int = 200, **headers: str) -> Plan:
    return lambda _id, _n: Reply(status, dict(headers))


@dataclass
class Receiver:
    """Scripted by ``plan``; ``secret`` is the one key this receiver knows."""

    secret: str = NEW_SECRET
    plan: Plan = field(default_factory=always)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    in_flight: int = 0
    max_in_flight: int = 0
    # When set, requests wait here until more than ``gate_above`` are in flight at once.
    gate_above: int | None = None
    _gate: asyncio.Event = field(default_factory=asyncio.Event)

    def ids(self) -> Counter[str]:
        return Counter(s.webhook_id for s in self.seen)

    def verified(self) -> list[Seen]:
        return [s for s in self.seen if s.verified]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        webhook_id = request.headers.get("webhook-id", "")
        try:
            Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified = False
        reply = self.plan(webhook_id, self.ids()[webhook_id]) if verified else Reply(401)
        self.seen.append(
            Seen(
                webhook_id,
                int(request.headers.get("webhook-timestamp", "0")),
                body,
                headers,
                request.path_qs,
                verified,
                reply,
            )
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate_above is not None and not self._gate.is_set():
                if self.in_flight > self.gate_above:
                    self._gate.set()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._gate.wait(), 10)
                    self._gate.set()  # opened once, for good: later requests never wait
            if reply.delay:
                await asyncio.sleep(reply.delay)
            return web.Response(status=reply.status, headers=reply.headers, text="ok")
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def serving(receiver: Receiver, path: str = "/hooks/reset") -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post(path, receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
