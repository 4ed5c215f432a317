"""``/range/{prefix}``: checked by an independent client (pyhibp, pointed at a live local server)
and against the Pwned Passwords format rules directly: CRLF, 35-hex suffixes, counts equal to the
corpus, the key-range bounds, padding rows of count 0 only when asked, and the 400s."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pyhibp
import pytest
from pyhibp import pwnedpasswords
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import create_app
from exposure.api.auth import Scope
from exposure.api.password_range import PAD_MAX, PAD_MIN, key_bounds
from exposure.settings import Settings
from exposure.store.models import LeakedPassword
from tests.integration.test_api_support import (
    add_leaked,
    api_client,
    bearer,
    error_of,
    live_server,
    make_token,
)

LINE = re.compile(r"[0-9A-F]{35}:[0-9]+")
LEAKED = {"Sakura#2025-current": 3, "Momiji!77-retired": 1, "password": 12}


def sha1(password: str) -> bytes:
    return hashlib.sha1(password.encode(), usedforsecurity=False).digest()


def digest(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


# Digests at and around the edges of prefix ABCDE, and at both ends of the key space.
EDGES = {
    digest("ABCDE" + "0" * 35): 5,  # first digest of ABCDE
    digest("ABCDE" + "F" * 35): 6,  # last digest of ABCDE
    digest("ABCDD" + "F" * 35): 7,  # just below
    digest("ABCDF" + "0" * 35): 8,  # just above
    digest("FFFFF" + "F" * 35): 9,  # the very last digest: FFFFF has no upper bound
    digest("FFFFE" + "F" * 35): 10,
    digest("00000" + "0" * 35): 11,  # the very first
}


def parse(body: bytes) -> dict[str, int]:
    text = body.decode()
    lines = text.split("\r\n") if text else []
    assert "\n" not in text.replace("\r\n", ""), "bare LF line end"
    assert all(LINE.fullmatch(line) for line in lines), lines[:3]
    assert lines == sorted(lines)
    return {line[:35]: int(line[36:]) for line in lines}


async def test_pyhibp_reads_our_range(
    engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_leaked(engine, {sha1(p): n for p, n in LEAKED.items()})
    pyhibp.set_user_agent(ua="exposure-tests")
    async with live_server(create_app(settings, engine)) as base:
        monkeypatch.setattr(pwnedpasswords, "PWNED_PASSWORDS_API_BASE_URI", f"{base}/")
        for password, count in LEAKED.items():
            for pad in (False, True):
                found = await asyncio.to_thread(
                    pwnedpasswords.is_password_breached, password=password, add_padding=pad
                )
                assert found == count, (password, pad)
        assert (
            await asyncio.to_thread(
                pwnedpasswords.is_password_breached, password="never-leaked-anywhere-42"
            )
            == 0
        )
        suffixes = await asyncio.to_thread(
            pwnedpasswords.suffix_search, hash_prefix=sha1("password").hex()[:5].upper()
        )
    assert f"{sha1('password').hex().upper()[5:]}:12" in suffixes


async def test_format_bounds_and_case(engine: AsyncEngine, settings: Settings) -> None:
    await add_leaked(engine, EDGES)
    async with api_client(settings, engine) as client:
        response = await client.get("/range/ABCDE")
        assert response.status == 200
        assert response.content_type == "text/plain" and response.charset == "utf-8"
        body = await response.read()
        assert parse(body) == {"0" * 35: 5, "F" * 35: 6}
        assert body == b"0" * 35 + b":5\r\n" + b"F" * 35 + b":6"
        assert await (await client.get("/range/abcde")).read() == body
        assert parse(await (await client.get("/range/FFFFF")).read()) == {"F" * 35: 9}
        assert parse(await (await client.get("/range/00000")).read()) == {"0" * 35: 11}
        assert await (await client.get("/range/12345")).read() == b""  # nothing leaked there
    assert key_bounds("ABCDE") == (digest("ABCDE0" + "0" * 34), digest("ABCDF0" + "0" * 34))
    assert key_bounds("FFFFF") == (digest("FFFFF0" + "0" * 34), None)


async def test_padding_only_when_asked(engine: AsyncEngine, settings: Settings) -> None:
    await add_leaked(engine, {sha1(p): n for p, n in LEAKED.items()} | EDGES)
    async with engine.connect() as conn:
        corpus = {
            bytes(row.sha1).hex().upper(): row.count
            for row in (await conn.execute(select(LeakedPassword))).all()
        }
    prefix = sha1("password").hex()[:5].upper()
    real = {h[5:]: n for h, n in corpus.items() if h.startswith(prefix)}
    async with api_client(settings, engine) as client:
        plain = parse(await (await client.get(f"/range/{prefix}")).read())
        assert plain == real  # no count-0 rows unless asked
        padded_sets = []
        for _ in range(2):
            response = await client.get(f"/range/{prefix}", headers={"Add-Padding": "true"})
            padded = parse(await response.read())
            assert PAD_MIN <= len(padded) <= PAD_MAX
            assert {s: n for s, n in padded.items() if n} == real  # real rows, true counts
            assert all(n == 0 for s, n in padded.items() if s not in real)
            padded_sets.append(set(padded))
        assert padded_sets[0] != padded_sets[1]  # random, not a fixed filler
        not_asked = await client.get(f"/range/{prefix}", headers={"Add-Padding": "false"})
        assert parse(await not_asked.read()) == real


@pytest.mark.parametrize("prefix", ["ABCD", "ABCDEF", "GHIJK", "ABC%20E", "%C3%A9BCDE", "-1234"])
async def test_bad_prefixes_are_400(engine: AsyncEngine, settings: Settings, prefix: str) -> None:
    async with api_client(settings, engine) as client:
        error = await error_of(await client.get(f"/range/{prefix}"), 400)
    assert error["code"] == "invalid_prefix" and "5 hexadecimal" in error["message"]


async def test_range_needs_read_scope_when_not_public(
    engine: AsyncEngine, settings: Settings
) -> None:
    await add_leaked(engine, EDGES)
    read = await make_token(engine, Scope.READ)
    enrol = await make_token(engine, Scope.ENROL)
    async with api_client(settings, engine, range_public=False) as client:
        await error_of(await client.get("/range/ABCDE"), 401)
        await error_of(await client.get("/range/ABCDE", headers=bearer(enrol)), 403)
        response = await client.get("/range/ABCDE", headers=bearer(read))
        assert parse(await response.read()) == {"0" * 35: 5, "F" * 35: 6}
        assert response.headers["Cache-Control"].startswith("private")
    async with api_client(settings, engine) as client:
        response = await client.get("/range/ABCDE")
        assert response.status == 200 and response.headers["Cache-Control"].startswith("public")
