"""Cases end to end, against real SQLite and PostgreSQL and a real receiver on 127.0.0.1 that
verifies every request with the ``standardwebhooks`` library: one webhook per customer
incident, one more when a notify case escalates, and nothing for a leaked password a completed
reset already covered (docs/decisions/cases.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings
from exposure.store.models import Case, Customer
from tests.integration.delivery_helpers import cli, deliver, webhook_env
from tests.integration.receiver import Receiver, serving
from tests.integration.test_api_support import api_client, bearer, make_token
from tests.leakgen import BROKER, CURRENT, HASHER, HEADER, OLD

EMAIL_1, LOGIN_1 = "kaede.mori@example.jp", "kaede77"
EMAIL_2, LOGIN_2 = "ren.ito@example.jp", "renito02"


def _bodies(receiver: Receiver) -> list[dict[str, Any]]:
    assert all(seen.verified for seen in receiver.seen)
    return [json.loads(seen.body) for seen in receiver.seen]


async def _exposures(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    out = (await cli("exposures", "--format", "jsonl", env=env, cwd=cwd)).stdout
    return [json.loads(line) for line in out.splitlines()]


async def test_one_webhook_per_case_an_escalation_and_nothing_after_a_reset(
    database_url: str, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    phc = HASHER.hash(CURRENT)
    (tmp_path / "customers.csv").write_text(
        HEADER + f"C1,{EMAIL_1},{LOGIN_1},,{phc}\nC2,{EMAIL_2},{LOGIN_2},,{phc}\n", "utf-8"
    )
    async with serving(Receiver()) as receiver:
        env = webhook_env(database_url, receiver.url)
        await cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)

        # One dump: C1's live password in several lines, as e-mail and as login ID, on the
        # broker's site and elsewhere; C2's retired password (stale: notify).
        first = tmp_path / "first"
        first.mkdir()
        (first / "combo.txt").write_text(
            f"{EMAIL_1}:{CURRENT}\n{LOGIN_1}:{CURRENT}\n{EMAIL_1}:{CURRENT}\n{EMAIL_2}:{OLD}\n",
            "utf-8",
        )
        (first / "ulp.txt").write_text(
            f"https://trade.{BROKER}/login:{LOGIN_1}:{CURRENT}\n"
            f"https://shop.example.com/signin:{EMAIL_1}:{CURRENT}\n",
            "utf-8",
        )
        await cli("ingest", str(first), "--source", "first", env=env, cwd=tmp_path)
        await deliver(env, tmp_path)
        bodies = _bodies(receiver)
        by_customer = {body["data"]["customer_id"]: body for body in bodies}
        assert len(bodies) == 2 and set(by_customer) == {"C1", "C2"}
        exposures = await _exposures(env, tmp_path)
        c1 = [e for e in exposures if e["customer_id"] == "C1"]
        assert len(c1) == 4 and len({e["case_id"] for e in c1}) == 1
        reset = by_customer["C1"]
        assert reset["type"] == "exposure.force_reset"
        data = reset["data"]
        assert data["case_id"] == c1[0]["case_id"]
        assert sorted(data["exposure_ids"]) == sorted(e["exposure_id"] for e in c1)
        assert data["exposure_id"] in data["exposure_ids"]
        trigger = next(e for e in c1 if e["exposure_id"] == data["exposure_id"])
        assert (data["action"], data["severity"]) == ("force_reset", "critical")
        assert data["password_status"] == trigger["password_status"] == "live"
        assert data["identifier_kind"] == trigger["identifier_kind"]
        assert data["site_domain"] == trigger["site_domain"]
        union = {a for e in c1 for a in e["recommended_actions"]}
        assert set(data["recommended_actions"]) == union
        assert len(data["recommended_actions"]) == len(union)
        notify = by_customer["C2"]
        assert notify["type"] == "exposure.notify" and notify["data"]["password_status"] == "stale"

        # C2's current password leaks later: the notify case escalates, exactly one more.
        second = tmp_path / "second"
        second.mkdir()
        (second / "combo.txt").write_text(
            f"{LOGIN_2}:{CURRENT}\n{EMAIL_2}:{CURRENT}\n{EMAIL_2}:{OLD}\n", "utf-8"
        )
        await cli("ingest", str(second), "--source", "second", env=env, cwd=tmp_path)
        await deliver(env, tmp_path)
        escalation = _bodies(receiver)[2:]
        assert [b["type"] for b in escalation] == ["exposure.force_reset"]
        assert escalation[0]["data"]["case_id"] == notify["data"]["case_id"]
        assert len(escalation[0]["data"]["exposure_ids"]) == 3
        assert receiver.seen[2].webhook_id != receiver.seen[1].webhook_id

        # The reset service completes C1's reset through the exposure's resolution; the
        # whole case is resolved, and the enrolled hash is superseded.
        token = await make_token(engine)
        async with api_client(settings, engine) as client:
            response = await client.post(
                f"/v1/exposures/{data['exposure_id']}/resolution",
                json={"resolution": "reset_completed", "resolved_by": "reset-service"},
                headers=bearer(token),
            )
            assert response.status == 200, await response.text()
        after = {e["exposure_id"]: e for e in await _exposures(env, tmp_path)}
        assert {after[i]["state"] for i in data["exposure_ids"]} == {"reset_completed"}
        async with engine.connect() as conn:
            case = (await conn.execute(select(Case).where(Case.case_id == data["case_id"]))).one()
            superseded = (
                await conn.execute(
                    select(Customer.password_superseded_at).where(Customer.customer_id == "C1")
                )
            ).scalar_one()
        assert (case.state, case.resolution) == ("resolved", "reset_completed")
        assert superseded == case.resolved_at

        # The old password again, in a new dump, on known and on new keys: nothing is sent,
        # no case opens, nothing reopens; the sightings are recorded.
        third = tmp_path / "third"
        third.mkdir()
        (third / "combo.txt").write_text(f"{EMAIL_1}:{CURRENT}\n{LOGIN_1}:{CURRENT}\n", "utf-8")
        (third / "ulp.txt").write_text(
            f"https://other.example.net/login:{LOGIN_1}:{CURRENT}\n", "utf-8"
        )
        summary = json.loads(
            (await cli("ingest", str(third), "--source", "third", env=env, cwd=tmp_path)).stdout
        )
        await deliver(env, tmp_path)
        assert len(receiver.seen) == 3
        final = await _exposures(env, tmp_path)
        c1_after = [e for e in final if e["customer_id"] == "C1"]
        assert len(c1_after) == 4
        assert {e["state"] for e in c1_after} == {"reset_completed"}
        assert {e["case_id"] for e in c1_after} == {data["case_id"]}
        assert sum(e["occurrences"] for e in c1_after) == 5 + 3
        assert summary["events"] == 0
        async with engine.connect() as conn:
            open_cases = (
                await conn.execute(select(Case.case_id).where(Case.state == "open"))
            ).all()
        assert len(open_cases) == 1  # C2's

        # Any other leak of C1 opens a new case, judged as unknown (no usable hash).
        fourth = tmp_path / "fourth"
        fourth.mkdir()
        (fourth / "combo.txt").write_text(f"{EMAIL_1}:Brand-new-leak!42\n", "utf-8")
        await cli("ingest", str(fourth), "--source", "fourth", env=env, cwd=tmp_path)
        await deliver(env, tmp_path)
        [fresh] = _bodies(receiver)[3:]
        assert fresh["type"] == "exposure.notify"
        assert fresh["data"]["password_status"] == "unknown"
        assert fresh["data"]["case_id"] != data["case_id"]
