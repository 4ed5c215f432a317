"""Offboarding keeps history honest, on real SQLite and PostgreSQL: a week's figures and the
delivered-webhook history are the same before and after ``customers delete``, and nothing in
the database names the customer any more (docs/decisions/cases.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.report import IsoWeek, build_report
from exposure.settings import Settings
from exposure.store.models import Case, Customer, CustomerIdentifier, Exposure, OutboxEvent
from tests.integration.delivery_helpers import cli, deliver, webhook_env
from tests.integration.receiver import Receiver, serving
from tests.leakgen import BROKER, CURRENT, HASHER, HEADER, OLD

GONE, STAYS = "KAEDE-0001", "REN-0002"
EMAIL, LOGIN, PHONE = "kaede.offboard@example.jp", "kaede-login-77", "090-1234-5678"


async def _every_value(engine: AsyncEngine) -> str:
    """Every row of every table, as text."""
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        parts = []
        for name in names:
            rows = await conn.execute(text(f'SELECT * FROM "{name}"'))  # noqa: S608 (catalogue)
            for row in rows:
                parts.extend(v.hex() if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(parts)


async def _history(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                OutboxEvent.event_id,
                OutboxEvent.event_type,
                OutboxEvent.state,
                OutboxEvent.attempts,
                OutboxEvent.delivered_at,
                OutboxEvent.case_id,
                OutboxEvent.exposure_id,
                OutboxEvent.last_error,
            ).order_by(OutboxEvent.id)
        )
        return [dict(row._mapping) for row in rows]


async def test_offboarding_keeps_figures_and_history_and_leaves_no_trace(
    database_url: str, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    phc = HASHER.hash(CURRENT)
    (tmp_path / "customers.csv").write_text(
        HEADER + f"{GONE},{EMAIL},{LOGIN},{PHONE},{phc}\n"
        f"{STAYS},ren.stays@example.jp,,,{HASHER.hash(CURRENT)}\n",
        "utf-8",
    )
    async with serving(Receiver()) as receiver:
        env = webhook_env(database_url, receiver.url)
        await cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        dumps = tmp_path / "dumps"
        dumps.mkdir()
        (dumps / "combo.txt").write_text(
            f"{EMAIL}:{OLD}\n{LOGIN}:{OLD}\nren.stays@example.jp:{OLD}\n", "utf-8"
        )
        (dumps / "ulp.txt").write_text(f"https://shop.example.com/in:{LOGIN}:{OLD}\n", "utf-8")
        await cli("ingest", str(dumps), env=env, cwd=tmp_path)
        await deliver(env, tmp_path)
        assert len(receiver.seen) == 2
        async with engine.begin() as conn:
            fingerprints = [
                bytes(fp)
                for (fp,) in await conn.execute(
                    select(CustomerIdentifier.fingerprint).where(
                        CustomerIdentifier.customer_id == GONE
                    )
                )
            ]
        # A later escalation of the customer is still pending when they leave.
        later = tmp_path / "later"
        later.mkdir()
        (later / "ulp.txt").write_text(f"https://trade.{BROKER}/login:{LOGIN}:{CURRENT}\n", "utf-8")
        await cli("ingest", str(later), env=env, cwd=tmp_path)

        now = datetime.now(UTC)
        week = IsoWeek.of(now.astimezone(settings.timezone).date())
        before = (await build_report(engine, settings, week, "en", now=now)).data
        history = await _history(engine)
        async with engine.connect() as conn:
            counts_before = {
                "exposures": len((await conn.execute(select(Exposure.exposure_id))).all()),
                "cases": len((await conn.execute(select(Case.case_id))).all()),
            }
        hint_before = await _every_value(engine)
        assert GONE in hint_before  # the scan below would see the customer

        result = await cli("customers", "delete", GONE, env=env, cwd=tmp_path)
        assert result.returncode == 0

        after = (await build_report(engine, settings, week, "en", now=now)).data
        # Every figure is the same, but for the one pending event, now dead-lettered.
        # (The report counts dead-lettered events as undelivered, pending ones by their age.)
        undelivered = before.headline.undelivered_events
        assert after.headline.undelivered_events == undelivered + 1
        assert after.delivery_by_state != before.delivery_by_state
        same_delivery = replace(
            after,
            headline=replace(after.headline, undelivered_events=undelivered),
            delivery_by_state=before.delivery_by_state,
        )
        assert same_delivery == before
        # Delivered history is unchanged; the pending escalation is dead-lettered, saying why.
        [pending] = [event for event in history if event["state"] == "pending"]
        assert len(history) == 3 and pending["event_type"] == "exposure.force_reset"
        now_history = await _history(engine)
        assert [e for e in now_history if e["event_id"] != pending["event_id"]] == [
            e for e in history if e["event_id"] != pending["event_id"]
        ]
        [dead] = [e for e in now_history if e["event_id"] == pending["event_id"]]
        assert dead["state"] == "dead"
        async with engine.connect() as conn:
            assert {
                "exposures": len((await conn.execute(select(Exposure.exposure_id))).all()),
                "cases": len((await conn.execute(select(Case.case_id))).all()),
            } == counts_before
            tombstones = (
                await conn.execute(
                    select(Customer.customer_id, Customer.password_hash).where(
                        Customer.customer_id.like("deleted-%")
                    )
                )
            ).all()
            payloads = [
                json.loads(p)
                for (p,) in await conn.execute(
                    select(OutboxEvent.payload).where(OutboxEvent.event_type.like("exposure.%"))
                )
            ]
        [(tombstone, tomb_hash)] = tombstones
        assert tomb_hash is None
        assert {p["data"]["customer_id"] for p in payloads} == {tombstone, STAYS}

    everything = await _every_value(engine)
    assert "customer offboarded" in everything  # the dead event's last_error
    for trace in (GONE, EMAIL, LOGIN, PHONE, phc, "kaede"):
        assert trace not in everything, trace
    for fingerprint in fingerprints:
        assert fingerprint.hex() not in everything
    assert STAYS in everything
