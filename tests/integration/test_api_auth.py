"""Bearer tokens: missing, malformed, unknown, wrong secret, revoked (also from another process
while the verification is cached), wrong scope, and the ``exposure tokens`` commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import add_routes, create_app
from exposure.api.auth import (
    InvalidTokenRequest,
    Scope,
    TokenAuthenticator,
    issue_token,
    public,
    requires,
    revoke_token,
)
from exposure.api.errors import ApiError
from exposure.settings import Settings
from exposure.store.access_models import ApiToken
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_api_support import TEST_ACTOR, api_client, bearer, error_of, make_token

PROTECTED = [
    ("GET", "/v1/exposures", Scope.READ),
    ("GET", "/v1/exposures/00000000-0000-4000-8000-000000000000", Scope.READ),
    ("POST", "/v1/exposures/00000000-0000-4000-8000-000000000000/resolution", Scope.RESOLVE),
    ("POST", "/v1/customers", Scope.ENROL),
    ("DELETE", "/v1/customers/C0001", Scope.ENROL),
]


async def test_missing_malformed_unknown_and_wrong_secret_are_401(
    engine: AsyncEngine, settings: Settings
) -> None:
    token = await make_token(engine)
    token_id = token.split("_")[1]
    wrong_secret = f"exp_{token_id}_{'A' * 43}"
    unknown_id = f"exp_{'0' * 16}_{token.split('_', 2)[2]}"
    async with api_client(settings, engine) as client:
        for method, path, _ in PROTECTED:
            response = await client.request(method, path)
            error = await error_of(response, 401)
            assert error["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        for header in (
            "Bearer",
            f"Basic {token}",
            "Bearer exp_nope",
            f"Bearer {wrong_secret}",
            f"Bearer {unknown_id}",
            f"Bearer {token}x",
        ):
            response = await client.get("/v1/exposures", headers={"Authorization": header})
            await error_of(response, 401)
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        ok = await client.get("/v1/exposures", headers=bearer(token))
        assert ok.status == 200
        # The scheme name is case-insensitive (RFC 7235).
        ok = await client.get("/v1/exposures", headers={"Authorization": f"bearer {token}"})
        assert ok.status == 200


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED)
async def test_wrong_scope_is_403_and_right_scope_passes(
    engine: AsyncEngine, settings: Settings, method: str, path: str, scope: Scope
) -> None:
    others = [s for s in Scope if s is not scope]
    lacking = await make_token(engine, *others)
    having = await make_token(engine, scope)
    async with api_client(settings, engine) as client:
        response = await client.request(method, path, headers=bearer(lacking))
        error = await error_of(response, 403)
        assert error["code"] == "insufficient_scope" and scope.value in error["message"]
        assert f'scope="{scope.value}"' in response.headers["WWW-Authenticate"]
        passed = await client.request(method, path, headers=bearer(having))
        # Past auth: whatever the handler says about this (empty) request, it is not 401/403.
        assert passed.status not in (401, 403), await passed.text()


async def test_revocation_takes_effect_on_the_next_request_despite_the_cache(
    engine: AsyncEngine, settings: Settings
) -> None:
    issued = await issue_token(engine, "reset-service", [Scope.READ], actor=TEST_ACTOR)
    async with api_client(settings, engine) as client:
        assert (await client.get("/v1/exposures", headers=bearer(issued.token))).status == 200
        # Cached now; a revocation by another process (the CLI) must still win at once.
        assert await revoke_token(engine, issued.record.token_id, actor=TEST_ACTOR) is True
        response = await client.get("/v1/exposures", headers=bearer(issued.token))
        assert (await error_of(response, 401))["code"] == "unauthorized"
    assert (
        await revoke_token(engine, issued.record.token_id, actor=TEST_ACTOR) is False
    )  # already revoked
    assert await revoke_token(engine, "0123456789abcdef", actor=TEST_ACTOR) is None  # unknown


async def test_last_used_at_is_recorded_and_only_a_hash_is_stored(
    engine: AsyncEngine, settings: Settings
) -> None:
    issued = await issue_token(engine, "reporting", [Scope.READ], actor=TEST_ACTOR)
    secret = issued.token.split("_", 2)[2]
    assert issued.record.last_used_at is None
    async with api_client(settings, engine) as client:
        assert (await client.get("/v1/exposures", headers=bearer(issued.token))).status == 200
    async with engine.connect() as conn:
        row = (await conn.execute(select(ApiToken))).one()
    assert row.last_used_at is not None
    assert row.secret_hash.startswith("$argon2id$") and secret not in row.secret_hash
    assert row.scopes == "read"


async def test_token_requests_are_validated(engine: AsyncEngine) -> None:
    for name, scopes in (("", ["read"]), ("x" * 129, ["read"]), ("ok", []), ("ok", ["admin"])):
        with pytest.raises(InvalidTokenRequest):
            await issue_token(engine, name, scopes, actor=TEST_ACTOR)


async def test_token_commands(database_url: str, tmp_path: Path, engine: AsyncEngine) -> None:
    env = environment(database_url)
    created = json.loads(
        run_cli(
            "tokens",
            "create",
            "reset-service",
            "--scope",
            "read",
            "--scope",
            "resolve",
            env=env,
            cwd=tmp_path,
        ).stdout
    )
    token, token_id = created["token"], created["token_id"]
    assert token.startswith(f"exp_{token_id}_") and created["scopes"] == ["read", "resolve"]
    listed = run_cli("tokens", "list", env=env, cwd=tmp_path).stdout
    assert token.split("_", 2)[2] not in listed  # the secret is shown once, at creation
    [entry] = json.loads(listed)["tokens"]
    assert entry["token_id"] == token_id and entry["revoked_at"] is None

    revoked = json.loads(run_cli("tokens", "revoke", token_id, env=env, cwd=tmp_path).stdout)
    assert revoked == {"token_id": token_id, "revoked": True, "already_revoked": False}
    [entry] = json.loads(run_cli("tokens", "list", env=env, cwd=tmp_path).stdout)["tokens"]
    assert entry["revoked_at"] is not None
    unknown = run_cli("tokens", "revoke", "feedfacefeedface", env=env, cwd=tmp_path, check=False)
    assert unknown.returncode == 1
    bad_scope = run_cli(
        "tokens", "create", "x", "--scope", "admin", env=env, cwd=tmp_path, check=False
    )
    assert bad_scope.returncode == 2


async def test_routes_added_later_follow_their_markers(
    engine: AsyncEngine, settings: Settings
) -> None:
    @public
    async def open_handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @requires(Scope.READ)
    async def reader_handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def unmarked(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = create_app(settings, engine)
    add_routes(
        app,
        [
            web.get("/v1/open", open_handler),
            web.get("/v1/reader", reader_handler),
            web.get("/v1/unmarked", unmarked),
        ],
    )
    reader = await make_token(engine, Scope.READ)
    enroller = await make_token(engine, Scope.ENROL)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/v1/open")).status == 200
        await error_of(await client.get("/v1/reader"), 401)
        await error_of(await client.get("/v1/reader", headers=bearer(enroller)), 403)
        assert (await client.get("/v1/reader", headers=bearer(reader))).status == 200
        # Unmarked fails closed: a valid token of any scope, never anonymous.
        await error_of(await client.get("/v1/unmarked"), 401)
        assert (await client.get("/v1/unmarked", headers=bearer(enroller))).status == 200


async def test_unknown_token_ids_take_as_long_as_wrong_secrets(engine: AsyncEngine) -> None:
    """A wrong secret for a real id costs an argon2 verification; an unknown or revoked id
    must cost the same, or response times tell which token ids exist (29 ms against 1.6 ms
    before the fix)."""
    real = await make_token(engine, Scope.READ)
    real_id = real.split("_")[1]
    revoked = await issue_token(engine, "gone", [Scope.READ], actor=TEST_ACTOR)
    await revoke_token(engine, revoked.record.token_id, actor=TEST_ACTOR)
    secret = "A" * 43
    presented = {
        "wrong": f"Bearer exp_{real_id}_{secret}",
        "unknown": f"Bearer exp_{'0' * 16}_{secret}",
        "revoked": f"Bearer exp_{revoked.record.token_id}_{secret}",
    }
    authenticator = TokenAuthenticator(engine)
    verified_against: list[str] = []
    verify = authenticator._verify

    def counting(secret_hash: str, candidate: str) -> bool:
        verified_against.append(secret_hash)
        return verify(secret_hash, candidate)

    authenticator._verify = counting  # type: ignore[method-assign]
    times: dict[str, list[float]] = {name: [] for name in presented}
    for _ in range(2):  # warm-up: the decoy hash is made on the first unknown id
        for header in presented.values():
            with pytest.raises(ApiError):
                await authenticator.authenticate(header)
    verified_against.clear()
    for _ in range(7):
        for name, header in presented.items():  # interleaved, so load hits every kind alike
            started = time.perf_counter()
            with pytest.raises(ApiError) as refused:
                await authenticator.authenticate(header)
            times[name].append(time.perf_counter() - started)
            assert refused.value.status == 401
            assert refused.value.message == "the API token is unknown or revoked"
    # Structurally: every refusal ran one argon2 verification with the tokens' parameters.
    assert len(verified_against) == 3 * 7
    parameters = {h.split("$")[3] for h in verified_against}
    assert parameters == {"m=19456,t=2,p=1"}
    # And in time: an unknown or revoked id is not measurably quicker to refuse. Each kind's
    # quickest refusal is compared: other work on the machine can only add time, so the
    # minimum is what the code itself costs.
    wrong = min(times["wrong"])
    assert wrong > 0.003  # argon2 really ran
    for name in ("unknown", "revoked"):
        assert min(times[name]) > 0.6 * wrong, (name, times)
