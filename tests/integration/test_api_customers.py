"""``POST /v1/customers`` and ``DELETE /v1/customers/{id}`` against real SQLite and PostgreSQL:
the CSV's rules over JSON, rejections by index without values, offboarding, the size limit."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import Scope
from exposure.settings import Settings
from exposure.store.models import Customer, CustomerIdentifier, Exposure
from tests.integration.test_api_support import (
    T0,
    add_exposure,
    api_client,
    bearer,
    error_of,
    make_token,
)
from tests.leakgen import HASHER

# Distinctive invented values: none may ever come back in a response or a log line.
SECRET_VALUES = [
    "Kotoha.Minamoto+kabu@gmail.com",
    "QXZW8821",
    "090-4417-2093",
    "broken-email-zenjiro",
    "ZZ-secret-login-\u0007",
]


def records() -> list[object]:
    return [
        {
            "customer_id": "C0001",
            "email": "Kotoha.Minamoto+kabu@gmail.com",
            "login_id": "QXZW8821",
            "phone": "090-4417-2093",
            "password_hash": HASHER.hash("Sakura#2025"),
        },
        {"customer_id": "C0002", "email": "broken-email-zenjiro"},  # 1: bad e-mail
        {"customer_id": "C0003", "login_id": "ZZ-secret-login-\u0007"},  # 2: control char
        "C0004",  # 3: not an object
        {"customer_id": "C0005", "phone": 9044172093},  # 4: wrong type
        {"customer_id": "C0006", "pasword_hash": "x"},  # 5: typo in a field name
        {"customer_id": "C0007", "password_hash": "5f4dcc3b5aa765d61d8327deb882cf99"},  # 6
        {"email": "nobody@example.jp"},  # 7: no customer_id
        {"customer_id": "C0002", "login_id": "KBT-77105", "email": None},  # fine; repeated id
    ]


@pytest.fixture
async def enrol_token(engine: AsyncEngine) -> AsyncIterator[str]:
    yield await make_token(engine, Scope.ENROL)


async def test_json_enrolment_follows_the_csv_rules(
    engine: AsyncEngine, settings: Settings, enrol_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with api_client(settings, engine) as client:
        response = await client.post("/v1/customers", json=records(), headers=bearer(enrol_token))
        assert response.status == 200, await response.text()
        text = await response.text()
        summary = await response.json()
        # The wrapped form is the same operation; enrolling again changes nothing.
        again = await client.post(
            "/v1/customers", json={"customers": records()}, headers=bearer(enrol_token)
        )
        assert (await again.json())["database"] == summary["database"]

    assert summary["rows"] == 9 and summary["customers"] == 3
    assert summary["identifiers"] == {"email": 1, "login_id": 2, "phone": 1}
    assert summary["rejected"] == 6
    reasons = {row["index"]: row["reason"] for row in summary["rejected_rows"]}
    assert set(reasons) == {1, 2, 3, 4, 5, 7}
    assert reasons[1] == "email: no_at"
    assert reasons[2].startswith("login_id:")
    assert reasons[3] == "not a JSON object"
    assert reasons[4] == "phone: must be a string or null"
    assert "'pasword_hash'" in reasons[5]  # a field name is quoted, a value never
    assert reasons[7] == "customer_id: empty"
    # An MD5 is refused, not the record: the customer is enrolled without it, and told why.
    assert summary["hashes_refused"] == {"unsalted_fast_hash": 1}
    assert summary["hashes_refused_rows"] == [{"index": 6, "reason": "unsalted_fast_hash"}]
    assert "stolen monitor database" in summary["hash_refusal_help"]["unsalted_fast_hash"]
    assert "5f4dcc3b5aa765d61d8327deb882cf99" not in text
    for value in SECRET_VALUES:
        assert value not in text and value.lower() not in text.lower()
        assert value not in caplog.text

    async with engine.connect() as conn:
        enrolled = (await conn.execute(select(Customer.customer_id))).scalars().all()
        hints = (await conn.execute(select(CustomerIdentifier.hint))).scalars().all()
    assert sorted(enrolled) == ["C0001", "C0002", "C0007"]
    assert "QXZW8821" not in hints and all("***" in hint for hint in hints)


async def test_enrolment_body_must_be_a_list_of_records(
    engine: AsyncEngine, settings: Settings, enrol_token: str
) -> None:
    auth = bearer(enrol_token)
    async with api_client(settings, engine) as client:
        for body in ({"customer": []}, {"customers": [], "extra": 1}, "C0001", 42, None):
            response = await client.post(
                "/v1/customers",
                data=json.dumps(body),
                headers={**auth, "Content-Type": "application/json"},
            )
            assert (await error_of(response, 400))["code"] == "invalid_body"
        for raw in (
            b"[{",
            b"",
            b"[NaN]",
            b"[" + b"9" * 5000 + b"]",
            b"[" * 100_000 + b"]" * 100_000,
            b"\xff\xfe",
        ):
            response = await client.post(
                "/v1/customers", data=raw, headers={**auth, "Content-Type": "application/json"}
            )
            assert (await error_of(response, 400))["code"] == "invalid_json"
        response = await client.post("/v1/customers", data=b"customer_id=C1", headers=auth)
        assert (await error_of(response, 415))["code"] == "unsupported_media_type"
        response = await client.post("/v1/customers?dry_run=1", json=[], headers=auth)
        assert (await error_of(response, 400))["code"] == "invalid_parameter"
        empty = await client.post("/v1/customers", json=[], headers=auth)
        assert empty.status == 200 and (await empty.json())["rows"] == 0


async def test_body_size_limit(engine: AsyncEngine, settings: Settings, enrol_token: str) -> None:
    body = [{"customer_id": f"C{n:05d}", "login_id": f"LOGIN{n:05d}"} for n in range(100)]
    async with api_client(settings, engine, api_max_body_bytes=1024) as client:
        response = await client.post("/v1/customers", json=body, headers=bearer(enrol_token))
        error = await error_of(response, 413)
        assert error["code"] == "payload_too_large" and "1024" in error["message"]

        async def chunks() -> AsyncIterator[bytes]:
            # No Content-Length: the limit must hold while the body streams in.
            yield b"["
            for _ in range(200):
                yield b'{"customer_id": "C1"},'
            yield b'{"customer_id": "C1"}]'

        response = await client.post(
            "/v1/customers",
            data=chunks(),
            headers={**bearer(enrol_token), "Content-Type": "application/json"},
        )
        assert (await error_of(response, 413))["code"] == "payload_too_large"
        small = await client.post("/v1/customers", json=body[:3], headers=bearer(enrol_token))
        assert small.status == 200
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(Customer))).scalar_one()
    assert count == 3  # nothing from the refused bodies landed


async def test_offboarding(engine: AsyncEngine, settings: Settings, enrol_token: str) -> None:
    auth = bearer(enrol_token)
    async with api_client(settings, engine) as client:
        await client.post(
            "/v1/customers",
            json=[
                {"customer_id": "C/01", "email": "offboard.me@example.jp"},
                {"customer_id": "C2"},
            ],
            headers=auth,
        )
        await add_exposure(engine, "C/01", first_seen=T0)
        response = await client.delete("/v1/customers/C%2F01", headers=auth)
        assert response.status == 200
        assert await response.json() == {"customer_id": "C/01", "deleted": True}
        again = await client.delete("/v1/customers/C%2F01", headers=auth)
        assert (await error_of(again, 404))["code"] == "not_found"
        too_long = await client.delete("/v1/customers/" + "x" * 129, headers=auth)
        assert (await error_of(too_long, 400))["code"] == "invalid_parameter"
    async with engine.connect() as conn:
        left = (await conn.execute(select(Customer.customer_id))).scalars().all()
        identifiers = (
            await conn.execute(select(func.count()).select_from(CustomerIdentifier))
        ).scalar_one()
        kept = (await conn.execute(select(Exposure.customer_id, Exposure.identifier_hint))).all()
    # The exposure stays (past figures do not change), on a tombstone with no identifiers.
    [tombstone] = [cid for cid in left if cid != "C2"]
    assert sorted(left) == sorted(["C2", tombstone]) and tombstone.startswith("deleted-")
    assert identifiers == 0 and [tuple(row) for row in kept] == [(tombstone, "")]
