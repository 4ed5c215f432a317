"""Local stand-ins for feed services, and helpers to run connectors against them.

:class:`FakeService` is a real aiohttp server on 127.0.0.1 that answers each path from a
script (a list of replies, the last one repeated) and records every request it saw.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.registry import Registry, load_registry
from exposure.customers import service as customer_service
from exposure.customers.enrolment import Enroller
from exposure.ingest.connector_runner import RetryPolicy, run_connector
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings, load_settings
from exposure.store.audit import Actor
from exposure.store.models import ConnectorRun, ConnectorState, Exposure, Sighting
from tests.conftest import environment
from tests.leakgen import HASHER, HEADER

SAMPLES = Path(__file__).parent / "samples"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
API_KEY = "invented-hibp-key-0123456789abcdef"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str | Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        body = self.body
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        return web.Response(
            status=self.status,
            body=body.encode() if isinstance(body, str) else body,
            headers=dict(self.headers),
        )


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class FakeService:
    """Answers ``path`` from its script, or with a handler; 404 for anything else."""

    def __init__(self) -> None:
        self.url = ""
        self.seen: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._handlers: dict[str, Handler] = {}

    def script(self, path: str, *replies: Reply) -> None:
        self._scripts[path] = list(replies)

    def handle(self, path: str, handler: Handler) -> None:
        self._handlers[path] = handler

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                time.monotonic(),
            )
        )
        if request.path in self._handlers:
            return await self._handlers[request.path](request)
        script = self._scripts.get(request.path)
        if not script:
            return web.Response(status=404)
        reply = script.pop(0) if len(script) > 1 else script[0]
        return reply.response()


@asynccontextmanager
async def serve() -> AsyncIterator[FakeService]:
    service = FakeService()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service._dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    service.url = f"http://127.0.0.1:{port}"
    try:
        yield service
    finally:
        await runner.cleanup()


def settings_for(database_url: str, tmp_path: Path, **variables: str) -> Settings:
    return load_settings(environment(database_url, **variables), env_file=tmp_path / "absent.env")


async def enrol(engine: AsyncEngine, settings: Settings, rows: list[tuple[str, ...]]) -> None:
    """Rows of (customer_id, email, login_id, password or '')."""
    lines = [HEADER.strip()]
    for customer_id, email, login_id, password in rows:
        phc = HASHER.hash(password) if password else ""
        lines.append(f"{customer_id},{email},{login_id},,{phc}")
    enroller = Enroller(
        settings.pepper.reveal(),
        login_id_case_sensitive=settings.login_id_case_sensitive,
        phone_region=settings.phone_region,
    )
    await customer_service.enrol_csv(
        engine, enroller, io.StringIO("\n".join(lines) + "\n"), actor=Actor.cli("test-suite")
    )


async def run_now(
    engine: AsyncEngine,
    settings: Settings,
    name: str,
    *,
    registry: Registry | None = None,
    ingestor_type: type[Ingestor] = Ingestor,
    once: bool = True,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """One run as the daemon would do it, with fast retries; its summary as
    ``exposure connectors run`` prints it."""
    index = await Ingestor.load_index(engine)
    async with PasswordVerifier(workers=1) as verifier, aiohttp.ClientSession() as session:
        ingestor = ingestor_type(engine, settings, index, verifier)
        result = await run_connector(
            engine,
            settings,
            session,
            ingestor,
            name,
            once=once,
            stop=stop,
            registry=registry or load_registry(),
            retry=FAST,
        )
    return result.as_json()


async def exposures(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Exposure).order_by(Exposure.customer_id))).all())


async def sightings(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(Sighting).order_by(Sighting.id))).all())


async def runs(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(ConnectorRun).order_by(ConnectorRun.id))).all())


async def cursor(engine: AsyncEngine, name: str) -> Any:
    async with engine.connect() as conn:
        text = (
            await conn.execute(select(ConnectorState.cursor).where(ConnectorState.name == name))
        ).scalar_one_or_none()
    return json.loads(text) if text else None
