"""Every change made through the API or the CLI lands in the audit log (who, what, when), and
the log is exported by ``GET /v1/audit`` and ``exposure audit``; the console's own changes are
covered in ``test_pages``. Nothing in the log identifies a customer who has been deleted."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.domain.fingerprints import customer_reference
from exposure.settings import Settings
from exposure.store.access_models import AuditEntry, ConsoleSession
from tests.cli import run_cli
from tests.conftest import TEST_PEPPER, environment
from tests.console import scenario
from tests.integration.test_api_support import api_client, bearer, error_of, make_token


async def _entries(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(AuditEntry).order_by(AuditEntry.id))
        return [
            {
                "channel": r.channel,
                "actor": r.actor,
                "token": r.actor_token_id,
                "action": r.action,
                "target": r.target,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]


async def test_api_changes_are_audited_with_their_token(
    engine: AsyncEngine, settings: Settings
) -> None:
    await scenario.seed(engine)
    service = await make_token(engine, Scope.RESOLVE, Scope.ENROL, Scope.READ, name="reset-svc")
    token_id = service.split("_")[1]
    exposure = scenario.exposure_id("due")
    async with api_client(settings, engine) as client:
        body = {"resolution": "reset_completed", "resolved_by": "reset-service", "reason": "ok"}
        first = await client.post(
            f"/v1/exposures/{exposure}/resolution", json=body, headers=bearer(service)
        )
        assert first.status == 200
        # A repeat changes nothing and is not a second entry; a conflict is refused.
        again = await client.post(
            f"/v1/exposures/{exposure}/resolution", json=body, headers=bearer(service)
        )
        assert again.status == 200
        conflict = await client.post(
            f"/v1/exposures/{exposure}/resolution",
            json={**body, "resolution": "dismissed"},
            headers=bearer(service),
        )
        assert (await error_of(conflict, 409))["code"] == "already_resolved"
        enrolled = await client.post(
            "/v1/customers",
            json=[{"customer_id": "C-9", "email": "new.customer@example.jp"}, {"bad": 1}],
            headers=bearer(service),
        )
        assert enrolled.status == 200
        deleted = await client.delete("/v1/customers/C-1007", headers=bearer(service))
        assert deleted.status == 200
        listing = await client.get("/v1/audit?limit=2", headers=bearer(service))
        page = await listing.json()
        rest = await (
            await client.get(f"/v1/audit?cursor={page['next_cursor']}", headers=bearer(service))
        ).json()
        bad = await client.get("/v1/audit?channel=fax", headers=bearer(service))
        assert (await error_of(bad, 400))["code"] == "invalid_parameter"
    entries = await _entries(engine)
    api = [e for e in entries if e["channel"] == "api"]
    assert [(e["action"], e["actor"], e["token"]) for e in api] == [
        ("exposure.resolved", "reset-svc", token_id),
        ("customers.enrolled", "reset-svc", token_id),
        ("customer.deleted", "reset-svc", token_id),
    ]
    assert api[0]["target"] == exposure
    assert api[0]["detail"]["reason"] == "ok" and api[0]["detail"]["resolved_by"] == "reset-service"
    assert api[1]["detail"] == {"rows": 2, "customers": 1, "rejected": 1}
    # The deleted customer is named by a keyed reference only.
    reference = customer_reference(bytes.fromhex(TEST_PEPPER), "C-1007")
    assert api[2]["target"] == reference and reference.startswith("cust_")
    assert "C-1007" not in json.dumps(entries) and "new.customer" not in json.dumps(entries)
    # The API pages through the whole log, oldest first.
    assert [e["action"] for e in page["entries"] + rest["entries"]] == [
        e["action"] for e in entries
    ]
    assert rest["next_cursor"] is None


async def test_cli_changes_are_audited_as_the_user(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await scenario.seed(engine)
    env = environment(database_url, USER="suzuki", LOGNAME="suzuki")
    created = json.loads(
        run_cli("tokens", "create", "console-user", "--scope", "read", env=env, cwd=tmp_path).stdout
    )
    token_id = created["token_id"]
    # A session opened with that token ends when the token is revoked.
    async with engine.begin() as conn:
        from exposure.clock import utcnow

        now = utcnow()
        await conn.execute(
            ConsoleSession.__table__.insert().values(
                session_hash=b"\x01" * 32,
                token_id=token_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now,
            )
        )
    run_cli("tokens", "revoke", token_id, env=env, cwd=tmp_path)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text("customer_id,email,login_id,phone,password_hash\nC-8,x.y@example.jp,,,\n")
    run_cli("enroll", str(csv_file), env=env, cwd=tmp_path)
    run_cli("customers", "delete", "C-8", env=env, cwd=tmp_path)
    run_cli("deliveries", "replay", "msg_overdue_0", env=env, cwd=tmp_path)
    dismiss = scenario.exposure_id("notify")
    run_cli("exposures", "dismiss", dismiss[:8], "--reason", "a duplicate", env=env, cwd=tmp_path)
    entries = [e for e in await _entries(engine) if e["channel"] == "cli"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("token.created", "suzuki"),
        ("token.revoked", "suzuki"),
        ("customers.enrolled", "suzuki"),
        ("customer.deleted", "suzuki"),
        ("event.replayed", "suzuki"),
        ("exposure.resolved", "suzuki"),
    ]
    assert entries[0]["detail"] == {"name": "console-user", "scopes": ["read"]}
    assert entries[1]["target"] == token_id and entries[1]["detail"] == {"sessions_ended": 1}
    assert entries[2]["target"] == "customers.csv"
    assert entries[4]["target"] == "msg_overdue_0"
    assert entries[5]["target"] == dismiss
    assert entries[5]["detail"]["reason"] == "a duplicate"
    assert entries[5]["detail"]["resolved_by"] == "cli:suzuki"
    async with engine.connect() as conn:
        assert (await conn.execute(select(ConsoleSession))).all() == []

    # Exported by the CLI: JSON lines or CSV, and "was C-8 deleted?" answered by its id.
    lines = run_cli("audit", env=env, cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line)["action"] for line in lines][-6:] == [e["action"] for e in entries]
    found = run_cli("audit", "--customer", "C-8", env=env, cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line)["action"] for line in found] == ["customer.deleted"]
    table = run_cli("audit", "--format", "csv", env=env, cwd=tmp_path).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert rows[-1]["action"] == "exposure.resolved" and rows[-1]["actor"] == "suzuki"
    assert "x.y@example.jp" not in table and "C-8" not in table
