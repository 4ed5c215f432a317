"""``/v1/exposures``: filters, keyset pagination, detail with sightings (from a real ingest),
resolutions and their repeats, and validation that answers 4xx, never 500."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import exposures as exposures_module
from exposure.api.auth import Scope
from exposure.logs import NEVER_VERBOSE
from exposure.settings import Settings
from exposure.store.models import Case, Customer, Exposure, OutboxEvent
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_api_support import (
    T0,
    add_customer,
    add_exposure,
    api_client,
    bearer,
    error_of,
    make_token,
)
from tests.leakgen import BROKER, CURRENT, HASHER, OLD

NEW_PASSWORD = "Fuji$2026-after-reset"
ACTIONS = ("force_reset", "notify", "none")
STATES = ("open", "open", "dismissed")


async def seed(engine: AsyncEngine, count: int) -> list[dict[str, Any]]:
    """``count`` exposures over three customers; every third shares its neighbour's
    first_seen, so pagination must break ties on the id."""
    for customer in ("C1", "C2", "C3"):
        await add_customer(engine, customer)
    rows = []
    for n in range(count):
        first_seen = T0 + timedelta(minutes=n - 1 if n % 3 == 2 else n)
        action, state = ACTIONS[n % 3], STATES[(n // 3) % 3]
        exposure_id = await add_exposure(
            engine, f"C{n % 3 + 1}", first_seen=first_seen, action=action, state=state
        )
        rows.append({"id": exposure_id, "first_seen": first_seen, "action": action, "state": state})
    return sorted(rows, key=lambda r: (r["first_seen"], r["id"]))


async def pages(
    client: TestClient[Any, Any], token: str, query: str, start: str | None = None
) -> list[str]:
    """Every exposure id of a listing, following next_cursor; fails on a repeated id."""
    seen: list[str] = []
    cursor = "" if start is None else f"&cursor={start}"
    while True:
        response = await client.get(f"/v1/exposures?{query}{cursor}", headers=bearer(token))
        assert response.status == 200, await response.text()
        body = await response.json()
        seen += [item["exposure_id"] for item in body["exposures"]]
        if body["next_cursor"] is None:
            assert len(seen) == len(set(seen))
            return seen
        assert len(body["exposures"]) > 0
        cursor = f"&cursor={body['next_cursor']}"


async def test_filters_and_pagination(engine: AsyncEngine, settings: Settings) -> None:
    rows = await seed(engine, 23)
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        assert await pages(client, token, "limit=4") == [r["id"] for r in rows]
        assert await pages(client, token, "limit=1") == [r["id"] for r in rows]
        first = await (await client.get("/v1/exposures", headers=bearer(token))).json()
        assert [e["exposure_id"] for e in first["exposures"]] == [r["id"] for r in rows]
        assert first["next_cursor"] is None  # default limit 100 covers all 23

        notify = await pages(client, token, "action=notify&limit=3")
        assert notify == [r["id"] for r in rows if r["action"] == "notify"]
        dismissed_reset = await pages(client, token, "action=force_reset&state=dismissed&limit=2")
        assert dismissed_reset == [
            r["id"] for r in rows if (r["action"], r["state"]) == ("force_reset", "dismissed")
        ]
        # since/until bound first_seen, half-open; any offset is the same instant.
        since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=15)
        query = "since=2025-05-12T09:05:00%2B09:00&until=2025-05-12T00:15:00Z&limit=4"
        assert await pages(client, token, query) == [
            r["id"] for r in rows if since <= r["first_seen"] < until
        ]

        # An exposure created while a client pages through appears once, at its place.
        response = await client.get("/v1/exposures?limit=10", headers=bearer(token))
        body = await response.json()
        late = await add_exposure(engine, "C1", first_seen=T0 + timedelta(days=1))
        rest = await pages(client, token, "limit=10", body["next_cursor"])
        ids = [e["exposure_id"] for e in body["exposures"]] + rest
        assert ids == [r["id"] for r in rows] + [late]

        item = body["exposures"][0]
        assert item["identifier_hint"] == "ta***@example.jp"
        assert item["first_seen"] == rows[0]["first_seen"].isoformat()
        assert item["resolution"] is None and item["site_domain"] is None
        assert "password_fp" not in item


async def test_detail_with_sightings_from_a_real_ingest(
    engine: AsyncEngine, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    token = await make_token(engine)
    customers = [
        {"customer_id": "E01", "login_id": "KLB00001", "password_hash": HASHER.hash(CURRENT)},
        {"customer_id": "E02", "email": "umeko.unknown.o@example.jp"},
    ]
    dump = tmp_path / "batch.txt"
    dump.write_text(
        f"# header line\nhttps://trade.{BROKER}/login:KLB00001:{CURRENT}\n"
        f"umeko.unknown.o@example.jp:{OLD}\nhttps://trade.{BROKER}/x:KLB00001:{CURRENT}\n"
    )
    async with api_client(settings, engine) as client:
        enrolled = await client.post("/v1/customers", json=customers, headers=bearer(token))
        assert (await enrolled.json())["customers"] == 2
        env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
        run_cli("ingest", str(dump), "--source", "darkweb-batch", env=env, cwd=tmp_path)

        listing = await (await client.get("/v1/exposures", headers=bearer(token))).json()
        by_customer = {e["customer_id"]: e for e in listing["exposures"]}
        assert by_customer["E01"]["action"] == "force_reset"
        assert by_customer["E01"]["password_status"] == "live"
        assert by_customer["E02"]["action"] == "notify"
        response = await client.get(
            f"/v1/exposures/{by_customer['E01']['exposure_id']}", headers=bearer(token)
        )
        detail = await response.json()
        text = await response.text()
    assert detail["customer_id"] == "E01" and detail["site_domain"] == f"trade.{BROKER}"
    assert detail["sightings_total"] == 2 and detail["sightings_truncated"] is False
    assert sorted(s["line"] for s in detail["sightings"]) == [2, 4]
    for sighting in detail["sightings"]:
        assert sighting["source"] == "darkweb-batch" and sighting["leak_type"] == "ulp"
        assert sighting["file"].endswith("batch.txt")
        assert datetime.fromisoformat(sighting["seen_at"]).tzinfo is not None
    # Masked hints only: neither the login ID nor the password comes back.
    assert "KLB00001" not in text and CURRENT not in text
    assert detail["identifier_hint"] == "kl***01"


async def test_detail_caps_sightings(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exposures_module, "MAX_SIGHTINGS", 2)
    await add_customer(engine, "C1")
    exposure_id = await add_exposure(engine, "C1", first_seen=T0, sightings=3)
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        detail = await (
            await client.get(f"/v1/exposures/{exposure_id}", headers=bearer(token))
        ).json()
        missing = await client.get(
            "/v1/exposures/00000000-0000-4000-8000-000000000000", headers=bearer(token)
        )
        assert (await error_of(missing, 404))["code"] == "not_found"
    assert detail["sightings_total"] == 3 and detail["sightings_truncated"] is True
    assert len(detail["sightings"]) == 2


async def test_resolution_is_recorded_once(engine: AsyncEngine, settings: Settings) -> None:
    await add_customer(engine, "C1")
    first_seen = datetime.now(UTC) - timedelta(hours=3)
    one = await add_exposure(engine, "C1", first_seen=first_seen)
    two = await add_exposure(engine, "C1", first_seen=first_seen, kind="phone")
    token = await make_token(engine, Scope.RESOLVE)
    auth = bearer(token)
    async with api_client(settings, engine) as client:
        ack = {"resolution": "reset_completed", "resolved_by": "reset-service"}
        response = await client.post(f"/v1/exposures/{one}/resolution", json=ack, headers=auth)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["state"] == "reset_completed" and body["resolution"] == "reset_completed"
        assert body["resolved_by"] == "reset-service"
        resolved_at = datetime.fromisoformat(body["resolved_at"])
        assert abs(resolved_at - datetime.now(UTC)) < timedelta(minutes=1)

        # A retry with the same resolution changes nothing, not even who or when.
        retry = await client.post(
            f"/v1/exposures/{one}/resolution",
            json={**ack, "resolved_by": "retry", "resolved_at": first_seen.isoformat()},
            headers=auth,
        )
        assert retry.status == 200 and (await retry.json()) == body
        conflict = await client.post(
            f"/v1/exposures/{one}/resolution",
            json={"resolution": "dismissed", "resolved_by": "analyst"},
            headers=auth,
        )
        error = await error_of(conflict, 409)
        assert error["code"] == "already_resolved" and "reset_completed" in error["message"]

        # An explicit time in +09:00 is stored as the same instant.
        local = (first_seen + timedelta(hours=1)).astimezone(settings.timezone)
        dismissed = await client.post(
            f"/v1/exposures/{two}/resolution",
            json={
                "resolution": "dismissed",
                "resolved_by": "analyst",
                "resolved_at": local.isoformat(),
            },
            headers=auth,
        )
        assert dismissed.status == 200
        assert datetime.fromisoformat((await dismissed.json())["resolved_at"]) == local

    async with engine.connect() as conn:
        rows = {r.exposure_id: r for r in (await conn.execute(select(Exposure))).all()}
    assert rows[one].state == "reset_completed" and rows[one].resolved_by == "reset-service"
    assert rows[one].resolved_at == resolved_at
    assert rows[two].state == "dismissed" and rows[two].resolved_at == local


async def test_resolution_validation(engine: AsyncEngine, settings: Settings) -> None:
    await add_customer(engine, "C1")
    exposure_id = await add_exposure(engine, "C1", first_seen=T0)
    auth = bearer(await make_token(engine, Scope.RESOLVE))
    url = f"/v1/exposures/{exposure_id}/resolution"
    ok = {"resolution": "dismissed", "resolved_by": "analyst"}
    bad_bodies: list[Any] = [
        [],
        {},
        {"resolution": "fixed", "resolved_by": "x"},
        {"resolution": "dismissed"},
        {"resolution": "dismissed", "resolved_by": ""},
        {"resolution": "dismissed", "resolved_by": 7},
        {"resolution": "dismissed", "resolved_by": "x" * 129},
        {**ok, "resolved_at": "yesterday"},
        {**ok, "resolved_at": "2025-05-12T09:00:00"},  # no offset
        {**ok, "resolved_at": 1715472000},
        {**ok, "resolved_at": "2025-05-11T00:00:00Z"},  # before first_seen
        {**ok, "resolved_at": "0001-01-01T00:00:00+09:00"},  # no UTC equivalent
        {**ok, "note": "extra"},
    ]
    async with api_client(settings, engine) as client:
        for body in bad_bodies:
            response = await client.post(url, json=body, headers=auth)
            assert (await error_of(response, 400))["code"] == "invalid_body", body
        response = await client.post("/v1/exposures/not-a-uuid/resolution", json=ok, headers=auth)
        assert (await error_of(response, 400))["code"] == "invalid_parameter"
        response = await client.post(
            "/v1/exposures/00000000-0000-4000-8000-000000000000/resolution", json=ok, headers=auth
        )
        assert (await error_of(response, 404))["code"] == "not_found"
    async with engine.connect() as conn:
        state = (await conn.execute(select(Exposure.state))).scalar_one()
    assert state == "open"  # none of the refused requests changed anything


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("action=reset", "invalid_parameter"),
        ("state=Open!", "invalid_parameter"),
        ("since=yesterday", "invalid_parameter"),
        ("since=2025-05-12T00:00:00", "invalid_parameter"),  # naive
        ("since=2025-05-12T00:00:00Z&until=2025-05-11T00:00:00Z", "invalid_parameter"),
        ("since=0001-01-01T00:00:00%2B09:00", "invalid_parameter"),  # no UTC equivalent
        ("until=9999-12-31T23:59:59-09:00", "invalid_parameter"),
        ("limit=0", "invalid_parameter"),
        ("limit=1001", "invalid_parameter"),
        ("limit=-5", "invalid_parameter"),
        ("limit=ten", "invalid_parameter"),
        ("limit=99999999999999999999", "invalid_parameter"),
        ("cursor=%%%", "invalid_cursor"),
        ("cursor=bm90IGpzb24", "invalid_cursor"),
        (f"cursor={_cursor(['2025-05-12T00:00:00', 'x'])}", "invalid_cursor"),
        (f"cursor={_cursor(['2025-05-12T00:00:00+00:00', 'not-a-uuid'])}", "invalid_cursor"),
        (f"cursor={_cursor({'a': 1})}", "invalid_cursor"),
        (f"cursor={_cursor(['0001-01-01T00:00:00+09:00', str(uuid.uuid4())])}", "invalid_cursor"),
        (f"cursor={_cursor([1, 2, 3])}", "invalid_cursor"),
        ("acton=notify", "invalid_parameter"),
        ("limit=5&limit=6", "invalid_parameter"),
    ],
)
async def test_bad_listing_parameters_are_400(
    engine: AsyncEngine, settings: Settings, query: str, code: str
) -> None:
    token = await make_token(engine, Scope.READ)
    async with api_client(settings, engine) as client:
        response = await client.get(f"/v1/exposures?{query}", headers=bearer(token))
        assert (await error_of(response, 400))["code"] == code


async def test_unknown_paths_and_methods_answer_json(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with api_client(settings, engine) as client:
        assert (await error_of(await client.get("/v2/nothing"), 404))["code"] == "not_found"
        response = await client.put("/v1/exposures")
        assert (await error_of(response, 405))["code"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"]


async def test_a_reset_with_a_new_hash_on_the_exposure_route_replaces_the_enrolled_hash(
    engine: AsyncEngine,
    settings: Settings,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reset service acknowledges the exposure it was sent, with the customer's new hash:
    from then on a leak of the new password is live (a new case, a new event), and the old
    one, covered by the reset, sends nothing. A refused hash is a 400 on password_hash that
    never quotes it, in the response or in the logs."""
    # Every log at DEBUG, as `exposure -v` has it (the drivers that print bound parameters
    # kept at WARNING, as exposure.logs keeps them).
    caplog.set_level(logging.DEBUG)
    for name in NEVER_VERBOSE:
        caplog.set_level(logging.WARNING, logger=name)
    token = await make_token(engine, Scope.READ, Scope.RESOLVE, Scope.ENROL, name="reset-service")
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    login = "KLB00042"
    customers = [{"customer_id": "R01", "login_id": login, "password_hash": HASHER.hash(CURRENT)}]

    def ingest(name: str, password: str) -> dict[str, Any]:
        dump = tmp_path / name
        dump.write_text(f"https://trade.{BROKER}/login:{login}:{password}\n")
        done = run_cli("ingest", str(dump), "--source", name, env=env, cwd=tmp_path)
        return dict(json.loads(done.stdout))

    md5 = "5f4dcc3b5aa765d61d8327deb882cf99"
    new_hash = HASHER.hash(NEW_PASSWORD)
    async with api_client(settings, engine) as client:
        enrolled = await client.post("/v1/customers", json=customers, headers=bearer(token))
        assert enrolled.status == 200, await enrolled.text()
        assert ingest("first.txt", CURRENT)["events"] == 1
        [exposure] = (await (await client.get("/v1/exposures", headers=bearer(token))).json())[
            "exposures"
        ]
        assert (exposure["password_status"], exposure["action"]) == ("live", "force_reset")
        url = f"/v1/exposures/{exposure['exposure_id']}/resolution"
        ack = {"resolution": "reset_completed", "resolved_by": "reset-service"}

        refused = await client.post(url, json={**ack, "password_hash": md5}, headers=bearer(token))
        refused_text = await refused.text()
        error = await error_of(refused, 400)
        assert error["code"] == "invalid_body" and "password_hash" in error["message"]
        assert md5 not in refused_text
        # Refused means nothing changed: the exposure is still open, the hash still enrolled.
        still = await (
            await client.get(url.removesuffix("/resolution"), headers=bearer(token))
        ).json()
        assert still["state"] == "open"

        response = await client.post(
            url, json={**ack, "password_hash": new_hash}, headers=bearer(token)
        )
        assert response.status == 200, await response.text()
        resolved_text = await response.text()
        assert json.loads(resolved_text)["state"] == "reset_completed"
        assert new_hash not in resolved_text
        audit = await (
            await client.get("/v1/audit?action=exposure.resolved", headers=bearer(token))
        ).text()
    assert json.loads(audit)["entries"][0]["detail"]["enrolled_hash"] == "replaced"
    assert new_hash not in audit
    async with engine.connect() as conn:
        customer = (await conn.execute(select(Customer).where(Customer.customer_id == "R01"))).one()
    assert (customer.password_hash, customer.password_superseded_at) == (new_hash, None)

    # The old password again: covered by the reset, nothing is sent, no case opens.
    assert ingest("second.txt", CURRENT)["events"] == 0
    # The new password leaks: live against the new hash, a new case and its event.
    assert ingest("third.txt", NEW_PASSWORD)["events"] == 1
    async with engine.connect() as conn:
        cases = (await conn.execute(select(Case).order_by(Case.opened_at))).all()
        events = (await conn.execute(select(OutboxEvent))).all()
        statuses = set((await conn.execute(select(Exposure.password_status))).scalars())
    assert [(c.state, c.action) for c in cases] == [
        ("resolved", "force_reset"),
        ("open", "force_reset"),
    ]
    assert sorted((e.case_id, e.event_type) for e in events) == sorted(
        (c.case_id, "exposure.force_reset") for c in cases
    )
    assert "live" in statuses
    for secret in (md5, new_hash, new_hash.rsplit("$", 1)[-1]):
        assert secret not in caplog.text
