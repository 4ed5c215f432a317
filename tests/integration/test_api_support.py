"""Helpers shared by the HTTP API tests (no tests here): a client over a real aiohttp test
server, a live server on a real port, tokens, and exposures written straight to the store."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.api import create_app
from exposure.api.auth import Scope, issue_token
from exposure.settings import Settings
from exposure.store.audit import Actor
from exposure.store.models import (
    Case,
    Customer,
    Exposure,
    IngestRun,
    LeakedPassword,
    OutboxEvent,
    Sighting,
)

ALL_SCOPES = (Scope.ENROL, Scope.READ, Scope.RESOLVE)
# Who the tests' own changes are recorded as in the audit log.
TEST_ACTOR = Actor.cli("test-suite")
T0 = datetime(2025, 5, 12, 0, 0, tzinfo=UTC)


@asynccontextmanager
async def api_client(
    settings: Settings, engine: AsyncEngine, **overrides: Any
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A client of the API on a real (test) server; ``overrides`` replace settings fields."""
    app = create_app(dataclasses.replace(settings, **overrides), engine)
    async with TestClient(TestServer(app)) as client:
        yield client


@asynccontextmanager
async def live_server(app: web.Application) -> AsyncIterator[str]:
    """The app on a real port of 127.0.0.1, for clients that run in other threads/processes."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def make_token(engine: AsyncEngine, *scopes: Scope, name: str = "test") -> str:
    return (await issue_token(engine, name, scopes or ALL_SCOPES, actor=TEST_ACTOR)).token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def add_customer(engine: AsyncEngine, customer_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(Customer).values(customer_id=customer_id, created_at=T0, updated_at=T0)
        )


async def add_exposure(
    engine: AsyncEngine,
    customer_id: str,
    *,
    first_seen: datetime,
    action: str = "force_reset",
    state: str = "open",
    kind: str = "email",
    sightings: int = 0,
) -> str:
    """One exposure row (and ``sightings`` sighting rows), as the pipeline would write it."""
    exposure_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            insert(Exposure).values(
                exposure_id=exposure_id,
                customer_id=customer_id,
                identifier_kind=kind,
                password_fp=hashlib.sha256(exposure_id.encode()).digest(),
                site_domain="",
                match_strength="strict",
                password_status="live",
                action=action,
                severity="critical" if action == "force_reset" else "medium",
                leak_type="combo",
                has_pin=False,
                reason="test",
                recommended_actions=json.dumps(["reset_password"]),
                source="test-feed",
                identifier_hint="ta***@example.jp",
                state=state,
                first_seen=first_seen,
                last_seen=first_seen,
                occurrences=max(1, sightings),
                decided_at=first_seen,
            )
        )
        if sightings:
            run_id = await _ingest_run(conn)
            await conn.execute(
                insert(Sighting),
                [
                    {
                        "exposure_id": exposure_id,
                        "run_id": run_id,
                        "ordinal": n,
                        "source": "test-feed",
                        "file": f"dump-{n}.txt",
                        "line_no": 10 + n,
                        "leak_type": "combo",
                        "seen_at": first_seen,
                    }
                    for n in range(sightings)
                ],
            )
    return exposure_id


async def add_case(
    engine: AsyncEngine,
    customer_id: str,
    exposure_ids: list[str],
    *,
    opened_at: datetime,
    action: str = "force_reset",
    state: str = "open",
    force_reset_at: datetime | None = None,
    resolution: str | None = None,
    resolved_at: datetime | None = None,
    events: tuple[str, ...] = (),
) -> str:
    """A case over ``exposure_ids`` (already written), as the ingest writer would record it,
    with one outbox row per type in ``events`` announcing it."""
    case_id = str(uuid.uuid4())
    if force_reset_at is None and action == "force_reset":
        force_reset_at = opened_at
    async with engine.begin() as conn:
        await conn.execute(
            insert(Case).values(
                case_id=case_id,
                customer_id=customer_id,
                state=state,
                action=action,
                severity="critical" if action == "force_reset" else "medium",
                announced_action=None if action == "none" else action,
                opened_at=opened_at,
                updated_at=opened_at,
                force_reset_at=force_reset_at,
                resolution=resolution,
                resolved_at=resolved_at,
                resolved_by=None if resolution is None else "test",
            )
        )
        if exposure_ids:
            await conn.execute(
                update(Exposure)
                .where(Exposure.exposure_id.in_(exposure_ids))
                .values(case_id=case_id)
            )
        for n, event_type in enumerate(events):
            await conn.execute(
                insert(OutboxEvent).values(
                    event_id=f"msg_{case_id[:8]}_{n}",
                    exposure_id=exposure_ids[0] if exposure_ids else None,
                    case_id=case_id,
                    event_type=event_type,
                    payload="{}",
                    state="delivered" if n == 0 else "pending",
                    attempts=1 if n == 0 else 0,
                    created_at=opened_at,
                    next_attempt_at=opened_at,
                    delivered_at=opened_at if n == 0 else None,
                )
            )
    return case_id


async def _ingest_run(conn: AsyncConnection) -> int:
    result = await conn.execute(
        insert(IngestRun)
        .values(
            source="test-feed",
            input_name="dump",
            content_key=uuid.uuid4().hex,
            state="completed",
            feeds_corpus=True,
            started_at=T0,
            updated_at=T0,
        )
        .returning(IngestRun.id)
    )
    return int(result.scalar_one())


async def add_leaked(engine: AsyncEngine, digests: dict[bytes, int]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(LeakedPassword), [{"sha1": d, "count": c} for d, c in digests.items()]
        )


async def error_of(response: Any, status: int) -> dict[str, str]:
    """Assert the JSON error shape and status; return ``{"code", "message"}``."""
    assert response.status == status, (response.status, await response.text())
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return dict(body["error"])
