"""``/v1/cases``: listing with filters and keyset pagination, one case with its exposures,
sightings counts and events, auth and scopes, and validation that answers 4xx, never 500."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store.models import Customer
from tests.integration.test_api_support import (
    T0,
    add_case,
    add_customer,
    add_exposure,
    api_client,
    bearer,
    error_of,
    make_token,
)
from tests.leakgen import CURRENT, HASHER


async def seed_cases(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Seven customers, one case each (two share an opened_at, so pages break ties on the id):
    actions and states mixed, two exposures per case."""
    rows = []
    for n in range(7):
        customer = f"K{n}"
        await add_customer(engine, customer)
        opened = T0 + timedelta(hours=n - 1 if n == 3 else n)
        action = ("force_reset", "notify")[n % 2]
        state = "resolved" if n in (1, 4) else "open"
        members = [
            await add_exposure(engine, customer, first_seen=opened, action=action, kind=kind)
            for kind in ("email", "login_id")
        ]
        case_id = await add_case(
            engine,
            customer,
            members,
            opened_at=opened,
            action=action,
            state=state,
            resolution="reset_completed" if state == "resolved" else None,
            resolved_at=opened + timedelta(hours=2) if state == "resolved" else None,
        )
        rows.append({"id": case_id, "opened": opened, "action": action, "state": state})
    return sorted(rows, key=lambda r: (r["opened"], r["id"]))


async def all_pages(client: TestClient[Any, Any], token: str, query: str) -> list[str]:
    seen: list[str] = []
    cursor = ""
    while True:
        response = await client.get(f"/v1/cases?{query}{cursor}", headers=bearer(token))
        assert response.status == 200, await response.text()
        body = await response.json()
        seen += [item["case_id"] for item in body["cases"]]
        if body["next_cursor"] is None:
            assert len(seen) == len(set(seen))
            return seen
        cursor = f"&cursor={body['next_cursor']}"


async def test_list_filters_and_pages(engine: AsyncEngine, settings: Settings) -> None:
    rows = await seed_cases(engine)
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        assert await all_pages(client, token, "limit=2") == [r["id"] for r in rows]
        assert await all_pages(client, token, "limit=1&state=open") == [
            r["id"] for r in rows if r["state"] == "open"
        ]
        assert await all_pages(client, token, "action=notify&state=resolved") == [
            r["id"] for r in rows if (r["action"], r["state"]) == ("notify", "resolved")
        ]
        since = T0 + timedelta(hours=2)
        assert await all_pages(client, token, "since=2025-05-12T11:00:00%2B09:00&limit=3") == [
            r["id"] for r in rows if r["opened"] >= since
        ]
        body = await (await client.get("/v1/cases?limit=100", headers=bearer(token))).json()
        first = body["cases"][0]
        assert first["exposure_count"] == 2
        assert first["opened_at"] == rows[0]["opened"].isoformat()
        assert set(first) == {
            "case_id",
            "customer_id",
            "state",
            "action",
            "severity",
            "opened_at",
            "updated_at",
            "force_reset_at",
            "resolution",
            "resolved_at",
            "resolved_by",
            "exposure_count",
        }


async def test_one_case_with_exposures_sightings_and_events(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_customer(engine, "C1")
    notify = await add_exposure(engine, "C1", first_seen=T0, action="notify", sightings=2)
    reset = await add_exposure(
        engine, "C1", first_seen=T0 + timedelta(hours=1), kind="login_id", sightings=3
    )
    case_id = await add_case(
        engine,
        "C1",
        [notify, reset],
        opened_at=T0,
        force_reset_at=T0 + timedelta(hours=1),
        events=("exposure.notify", "exposure.force_reset"),
    )
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        response = await client.get(f"/v1/cases/{case_id}", headers=bearer(token))
        assert response.status == 200, await response.text()
        body = await response.json()
    assert body["case_id"] == case_id and body["customer_id"] == "C1"
    assert body["force_reset_at"] == (T0 + timedelta(hours=1)).isoformat()
    # The most severe action first, then by first_seen.
    assert [(e["exposure_id"], e["sightings"]) for e in body["exposures"]] == [
        (reset, 3),
        (notify, 2),
    ]
    assert body["exposures"][0]["identifier_hint"] == "ta***@example.jp"
    assert body["exposures"][0]["site_domain"] is None
    assert "password_fp" not in body["exposures"][0]
    assert body["exposures_truncated"] is False
    assert [(e["event_type"], e["state"]) for e in body["events"]] == [
        ("exposure.notify", "delivered"),
        ("exposure.force_reset", "pending"),
    ]
    assert body["events"][0]["delivered_at"] == T0.isoformat()
    assert body["events"][1]["delivered_at"] is None


async def test_auth_scopes_and_validation(engine: AsyncEngine, settings: Settings) -> None:
    rows = await seed_cases(engine)
    reader = await make_token(engine, Scope.READ)
    enroller = await make_token(engine, Scope.ENROL, name="enroller")
    async with api_client(settings, engine) as client:
        await error_of(await client.get("/v1/cases"), 401)
        await error_of(await client.get(f"/v1/cases/{rows[0]['id']}"), 401)
        assert (await error_of(await client.get("/v1/cases", headers=bearer(enroller)), 403))[
            "code"
        ] == "insufficient_scope"
        missing = "00000000-0000-4000-8000-000000000000"
        assert (
            await error_of(await client.get(f"/v1/cases/{missing}", headers=bearer(reader)), 404)
        )["code"] == "not_found"
        for query, field in (
            ("state=reset_completed", "state"),
            ("action=urgent", "action"),
            ("since=2025-05-12T09:00:00", "since"),
            ("limit=0", "limit"),
            ("cursor=not-a-cursor", "cursor"),
            ("stat=open", "stat"),
            ("since=2025-05-13T00:00:00Z&until=2025-05-12T00:00:00Z", "since"),
        ):
            error = await error_of(
                await client.get(f"/v1/cases?{query}", headers=bearer(reader)), 400
            )
            assert field in error["message"], (query, error)
        error = await error_of(await client.get("/v1/cases/nope", headers=bearer(reader)), 400)
        assert "case_id" in error["message"]


async def test_resolve_a_case_once_with_its_exposures_and_an_audit_entry(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_customer(engine, "C1")
    members = [
        await add_exposure(engine, "C1", first_seen=T0, kind=kind) for kind in ("email", "phone")
    ]
    case_id = await add_case(engine, "C1", members, opened_at=T0)
    resolver = await make_token(engine, Scope.READ, Scope.RESOLVE, name="reset-service")
    reader = await make_token(engine, Scope.READ, name="reader")
    url = f"/v1/cases/{case_id}/resolution"
    new_hash = HASHER.hash(CURRENT)
    body = {
        "resolution": "reset_completed",
        "resolved_by": "reset-service",
        "resolved_at": "2025-05-12T12:00:00+09:00",
        "password_hash": new_hash,
    }
    async with api_client(settings, engine) as client:
        await error_of(await client.post(url, json=body), 401)
        denied = await error_of(await client.post(url, json=body, headers=bearer(reader)), 403)
        assert denied["code"] == "insufficient_scope"

        response = await client.post(url, json=body, headers=bearer(resolver))
        assert response.status == 200, await response.text()
        resolved = await response.json()
        assert resolved["state"] == "resolved" and resolved["resolution"] == "reset_completed"
        assert resolved["resolved_at"] == "2025-05-12T03:00:00+00:00"
        assert {e["state"] for e in resolved["exposures"]} == {"reset_completed"}
        assert new_hash not in json.dumps(resolved)

        # The same again: an idempotent 200 that changes nothing; a different one: 409.
        again = await client.post(
            url, json={**body, "resolved_at": "2025-05-12T13:00:00+09:00"}, headers=bearer(resolver)
        )
        assert again.status == 200
        assert (await again.json())["resolved_at"] == resolved["resolved_at"]
        conflict = await error_of(
            await client.post(
                url,
                json={"resolution": "dismissed", "resolved_by": "x"},
                headers=bearer(resolver),
            ),
            409,
        )
        assert conflict["code"] == "already_resolved" and "reset_completed" in conflict["message"]

        audit = await (
            await client.get("/v1/audit?action=case.resolved", headers=bearer(reader))
        ).json()
    [entry] = audit["entries"]
    assert (entry["target"], entry["channel"], entry["actor"]) == (case_id, "api", "reset-service")
    assert entry["detail"]["enrolled_hash"] == "replaced"
    assert new_hash not in json.dumps(entry)
    async with engine.connect() as conn:
        enrolled = (
            await conn.execute(select(Customer.password_hash).where(Customer.customer_id == "C1"))
        ).scalar_one()
    assert enrolled == new_hash


async def test_resolution_requests_that_are_refused(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_customer(engine, "C1")
    member = await add_exposure(engine, "C1", first_seen=T0)
    case_id = await add_case(engine, "C1", [member], opened_at=T0)
    token = await make_token(engine)
    url = f"/v1/cases/{case_id}/resolution"
    ok = {"resolution": "dismissed", "resolved_by": "analyst"}
    async with api_client(settings, engine) as client:
        missing = "00000000-0000-4000-8000-000000000000"
        assert (
            await error_of(
                await client.post(
                    f"/v1/cases/{missing}/resolution", json=ok, headers=bearer(token)
                ),
                404,
            )
        )["code"] == "not_found"
        for bad, field in (
            ({**ok, "resolution": "fixed"}, "resolution"),
            ({**ok, "resolved_by": " "}, "resolved_by"),
            ({**ok, "resolved_by": 7}, "resolved_by"),
            ({"resolution": "dismissed"}, "resolved_by"),
            ({**ok, "colour": "red"}, "unknown field"),
            ({**ok, "password_hash": "$2b$12$" + "a" * 53}, "password_hash"),
            (
                {
                    **ok,
                    "resolution": "reset_completed",
                    "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99",
                },
                "password_hash",
            ),
            ({**ok, "resolved_at": "2025-05-11T00:00:00Z"}, "opened_at"),
            ({**ok, "resolved_at": "2999-01-01T00:00:00Z"}, "future"),
            ({**ok, "resolved_at": "yesterday"}, "resolved_at"),
            ([ok], "JSON object"),
        ):
            error = await error_of(await client.post(url, json=bad, headers=bearer(token)), 400)
            assert field in error["message"], (bad, error)
        text = await client.post(url, data="resolution=dismissed", headers=bearer(token))
        await error_of(text, 415)
        # Nothing above changed the case.
        body = await (await client.get(f"/v1/cases/{case_id}", headers=bearer(token))).json()
        assert body["state"] == "open" and body["resolution"] is None
