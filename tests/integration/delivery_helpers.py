"""Shared steps for the delivery tests: real outbox rows (enrol + ingest through the CLI), the
``exposure deliver`` command run off the event loop (the receiver lives on it), and the rows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store.models import DeliveryAttempt, OutboxEvent
from tests.cli import CliResult, run_cli, run_script
from tests.conftest import environment
from tests.integration.receiver import NEW_SECRET
from tests.leakgen import (
    BROKER,
    CURRENT,
    OLD,
    Case,
    enrolment_csv,
    policy_cases,
    write_everything,
)


def webhook_env(database_url: str, url: str | None, **overrides: str) -> dict[str, str]:
    extra = {"EXPOSURE_WEBHOOK_SECRET": NEW_SECRET, "EXPOSURE_BROKER_DOMAINS": BROKER}
    if url:
        extra["EXPOSURE_WEBHOOK_URL"] = url
    return environment(database_url, **{**extra, **overrides})


def seed(database_url: str, tmp_path: Path, cases: list[Case] | None = None) -> list[Case]:
    """Enrol the policy-table customers and ingest their leaks: one outbox row per exposure
    whose action is not ``none``."""
    cases = policy_cases() if cases is None else cases
    env = webhook_env(database_url, None)
    (tmp_path / "customers.csv").write_text(enrolment_csv(cases), "utf-8")
    run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
    write_everything(tmp_path / "dumps", cases)
    run_cli("ingest", str(tmp_path / "dumps"), env=env, cwd=tmp_path)
    return cases


def plaintext_values(cases: list[Case]) -> set[str]:
    values = {CURRENT, OLD, "hinatavariant@gmail.com", "hotaruvariant+kabu@googlemail.com"}
    for case in cases:
        values |= {case.email, case.email.lower(), case.login_id, case.login_id.lower()}
    return values


async def cli(
    *args: str, env: dict[str, str], cwd: Path, check: bool = True, process: bool = False
) -> CliResult:
    """``exposure ARGS`` in a thread, so the receiver on this event loop keeps answering; in a
    child process of its own with ``process`` (to run several at once)."""
    runner = run_script if process else run_cli
    return await asyncio.to_thread(runner, *args, env=env, cwd=cwd, check=check)


async def deliver(
    env: dict[str, str], cwd: Path, *, process: bool = False, status: int = 0
) -> tuple[dict[str, Any], str]:
    """``exposure deliver``'s summary and stderr; it must exit with ``status`` (1 when the
    endpoint is disabled or an event was dead-lettered)."""
    result = await cli("deliver", env=env, cwd=cwd, process=process, check=False)
    assert result.returncode == status, (result.returncode, result.stderr)
    return json.loads(result.stdout), result.stderr


async def outbox_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(OutboxEvent.__table__).order_by(OutboxEvent.id))
        return [dict(row._mapping) for row in rows]


async def attempt_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(DeliveryAttempt.__table__, OutboxEvent.event_id)
            .join(OutboxEvent, OutboxEvent.id == DeliveryAttempt.outbox_id)
            .order_by(DeliveryAttempt.id)
        )
        return [dict(row._mapping) for row in rows]


async def make_due(engine: AsyncEngine, **values: Any) -> None:
    """Move time instead of sleeping: every pending event is due now (or as ``values`` say)."""
    async with engine.begin() as conn:
        await conn.execute(
            update(OutboxEvent)
            .where(OutboxEvent.state == "pending")
            .values(**{"next_attempt_at": datetime.now(UTC), **values})
        )


async def age_events(engine: AsyncEngine, hours: float) -> None:
    """Pretend every event was created ``hours`` ago."""
    async with engine.begin() as conn:
        await conn.execute(
            update(OutboxEvent).values(created_at=datetime.now(UTC) - timedelta(hours=hours))
        )
