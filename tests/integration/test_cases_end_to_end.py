"""Cases from a real ingest, read and ended through the API and the CLI: one customer's live
password seen as e-mail and login id on several lines is one case with one event; the reset
service ends it with the new hash, and every exposure of it is resolved."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_api_support import api_client, bearer, make_token
from tests.leakgen import BROKER, CURRENT, HASHER

NEW = "Fuji$2026-after-reset"


async def test_one_customer_one_case_from_a_real_ingest(
    engine: AsyncEngine, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    token = await make_token(engine)
    customers = [
        {
            "customer_id": "E01",
            "email": "hanako.e2e@example.jp",
            "login_id": "KLB00001",
            "password_hash": HASHER.hash(CURRENT),
        }
    ]
    dump = tmp_path / "batch.txt"
    dump.write_text(
        f"https://trade.{BROKER}/login:KLB00001:{CURRENT}\n"
        f"hanako.e2e@example.jp:{CURRENT}\n"
        f"https://trade.{BROKER}/x:KLB00001:{CURRENT}\n"
    )
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    async with api_client(settings, engine) as client:
        enrolled = await client.post("/v1/customers", json=customers, headers=bearer(token))
        assert enrolled.status == 200
        run_cli("ingest", str(dump), "--source", "darkweb-batch", env=env, cwd=tmp_path)

        listing = await (await client.get("/v1/cases", headers=bearer(token))).json()
        [case] = listing["cases"]
        assert (case["customer_id"], case["action"], case["state"]) == (
            "E01",
            "force_reset",
            "open",
        )
        assert case["exposure_count"] == 2 and case["force_reset_at"] is not None
        detail = await (
            await client.get(f"/v1/cases/{case['case_id']}", headers=bearer(token))
        ).json()
        assert sorted(e["identifier_kind"] for e in detail["exposures"]) == ["email", "login_id"]
        assert sum(e["sightings"] for e in detail["exposures"]) == 3
        assert [e["event_type"] for e in detail["events"]] == ["exposure.force_reset"]

        # The CLI lists the same case.
        rows = run_cli("cases", "--format", "jsonl", env=env, cwd=tmp_path).stdout.splitlines()
        assert [json.loads(r)["case_id"] for r in rows] == [case["case_id"]]

        resolved = await client.post(
            f"/v1/cases/{case['case_id']}/resolution",
            json={
                "resolution": "reset_completed",
                "resolved_by": "reset-service",
                "password_hash": HASHER.hash(NEW),
            },
            headers=bearer(token),
        )
        assert resolved.status == 200, await resolved.text()
        body = await resolved.json()
        text = json.dumps(body)
    assert body["state"] == "resolved" and body["resolution"] == "reset_completed"
    assert {e["state"] for e in body["exposures"]} == {"reset_completed"}
    assert "KLB00001" not in text and "hanako" not in text and CURRENT not in text
