"""The hibp connector against a local stand-in for HIBP API v3 replaying recorded-shape samples:
stealer logs for broker domains, the k-anonymity e-mail range search, 401/429, the limiter."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.feeds import (
    API_KEY,
    SAMPLES,
    FakeService,
    Reply,
    cursor,
    enrol,
    exposures,
    run_now,
    serve,
    settings_for,
    sightings,
)
from tests.integration.test_enrolment_store import _dump_everything

STEALER = (SAMPLES / "hibp_stealerlogsbywebsitedomain.json").read_text()
RANGE_FILE = next(SAMPLES.glob("hibp_breachedaccount_range_*.json"))
RANGE_PREFIX = RANGE_FILE.stem.rsplit("_", 1)[1]
RANGE = RANGE_FILE.read_text()
CUSTOMERS = [
    ("H01", "hanako.stealer@example.jp", "HST00001", ""),
    ("H02", "ichiro.range@example.jp", "IRG00002", ""),
    ("H03", "jun.elsewhere@example.jp", "JEW00003", ""),
]


def sha1(email: str) -> str:
    return hashlib.sha1(email.encode(), usedforsecurity=False).hexdigest().upper()


def serve_hibp(service: FakeService, *, range_body: str = RANGE) -> None:
    service.script("/api/v3/stealerlogsbywebsitedomain/mirai-sec.co.jp", Reply(body=STEALER))
    # trade.sec.example (the other broker domain) is unknown to HIBP: 404, "nothing found".

    async def ranges(request: web.Request) -> web.Response:
        prefix = request.match_info["tail"].rsplit("/", 1)[1]
        return web.Response(text=range_body if prefix == RANGE_PREFIX else "[]")

    for _, email, _, _ in CUSTOMERS:
        service.handle(f"/api/v3/breachedaccount/range/{sha1(email)[:6]}", ranges)


async def _setup(
    engine: AsyncEngine, database_url: str, tmp_path: Path, url: str, **env: str
) -> Any:
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_HIBP_URL=f"{url}/api/v3",
        EXPOSURE_HIBP_API_KEY=API_KEY,
        **{"EXPOSURE_HIBP_RATE_PER_MINUTE": "60000", **env},
    )
    await enrol(engine, settings, CUSTOMERS)
    return settings


def test_the_range_sample_answers_an_enrolled_customer() -> None:
    assert sha1("ichiro.range@example.jp")[:6] == RANGE_PREFIX
    assert sha1("ichiro.range@example.jp")[6:] in RANGE


async def test_stealer_logs_and_range_search_become_exposures(
    engine: AsyncEngine, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve() as hibp:
        serve_hibp(hibp)
        settings = await _setup(engine, database_url, tmp_path, hibp.url)
        first = await run_now(engine, settings, "hibp")

        assert first["outcome"] == "success", first
        assert first["skipped"] == {"bad_range_entry": 1, "not_an_address": 1}
        found = {e.customer_id: e for e in await exposures(engine)}
        assert set(found) == {"H01", "H02"}
        stolen, ranged = found["H01"], found["H02"]
        # A broker-site leak without a password: force_reset (contract table).
        assert (stolen.leak_type, stolen.site_domain) == ("stealer_log", "mirai-sec.co.jp")
        assert (stolen.action, stolen.password_status) == ("force_reset", "absent")
        # A provider's alert for another site, no password: recorded, no webhook.
        assert (ranged.leak_type, ranged.identifier_kind, ranged.site_domain) == (
            "feed_alert",
            "email",
            "",
        )
        assert (ranged.action, ranged.source, ranged.occurrences) == ("none", "hibp", 2)
        assert ranged.identifier_hint.startswith("ic") and "@example.jp" in ranged.identifier_hint
        files = sorted(
            s.file for s in await sightings(engine) if s.exposure_id == ranged.exposure_id
        )
        assert files == ["FakeForum2024", "InventedShop"]

        # Only prefixes leave the machine, with the key and a user-agent on every request.
        prefixes = {sha1(email)[:6] for _, email, _, _ in CUSTOMERS}
        asked = [s.path.rsplit("/", 1)[1] for s in hibp.seen if "/range/" in s.path]
        assert sorted(asked) == sorted(prefixes)
        sent = " ".join(f"{s.path} {s.query} {s.headers}" for s in hibp.seen)
        for _, email, _, _ in CUSTOMERS:
            assert sha1(email)[6:] not in sent and email not in sent
        assert all(s.headers["hibp-api-key"] == API_KEY for s in hibp.seen)
        assert all(s.headers["user-agent"].startswith("exposure/") for s in hibp.seen)

        # Nothing new on the second run: the same lists add no sighting.
        before = len(await sightings(engine))
        second = await run_now(engine, settings, "hibp")
        assert second["outcome"] == "success" and len(await sightings(engine)) == before
        assert second["new_exposures"] == {"force_reset": 0, "notify": 0, "none": 0}

        # A new breach for the same customer: one sighting more, the same exposure.
        entries = json.loads(RANGE)
        for entry in entries:
            if entry["hashSuffix"] == sha1("ichiro.range@example.jp")[6:]:
                entry["websites"].append("NewlyInvented2025")
        serve_hibp(hibp, range_body=json.dumps(entries))
        await run_now(engine, settings, "hibp")
    again = {e.customer_id: e for e in await exposures(engine)}
    assert again["H02"].exposure_id == ranged.exposure_id and again["H02"].occurrences == 3
    assert len(await sightings(engine)) == before + 1
    dump = await _dump_everything(database_url, tmp_path)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "connector hibp: success" in logged  # the scan does read the log
    for _, email, _, _ in CUSTOMERS:
        digest = sha1(email)
        assert email.encode() not in dump
        assert digest.encode() not in dump and digest.lower().encode() not in dump
        assert email not in logged and digest[6:] not in logged


async def test_range_search_is_bounded_per_run_and_wraps(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as hibp:
        serve_hibp(hibp)
        settings = await _setup(
            engine,
            database_url,
            tmp_path,
            hibp.url,
            EXPOSURE_HIBP_RANGE_MAX_PREFIXES="2",
            EXPOSURE_HIBP_STEALER_LOGS="false",
        )
        ordered = sorted(sha1(email)[:6] for _, email, _, _ in CUSTOMERS)
        for expected in (ordered[:2], ordered[2:], ordered[:2]):
            start = len(hibp.seen)
            summary = await run_now(engine, settings, "hibp")
            assert summary["outcome"] == "success"
            assert [s.path.rsplit("/", 1)[1] for s in hibp.seen[start:]] == expected
        assert (await cursor(engine, "hibp"))["range_after"] == ordered[1]
    assert not any("stealerlogs" in s.path for s in hibp.seen)


async def test_unauthorised_key_is_fatal_and_never_shown(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as hibp:
        hibp.script("/api/v3/stealerlogsbywebsitedomain/mirai-sec.co.jp", Reply(status=401))
        settings = await _setup(engine, database_url, tmp_path, hibp.url)
        summary = await run_now(engine, settings, "hibp")
    assert (summary["outcome"], summary["error_class"]) == ("failed", "fatal")
    assert "EXPOSURE_HIBP_API_KEY" in summary["error"] and API_KEY not in summary["error"]
    assert len(hibp.seen) == 1


async def test_429_retry_after_is_honoured(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as hibp:
        serve_hibp(hibp)
        hibp.script(
            "/api/v3/stealerlogsbywebsitedomain/mirai-sec.co.jp",
            Reply(status=429, headers={"retry-after": "1"}),
            Reply(body=STEALER),
        )
        settings = await _setup(engine, database_url, tmp_path, hibp.url)
        summary = await run_now(engine, settings, "hibp")
    assert summary["outcome"] == "success" and summary["retries"] == 1
    first, second = [s.at for s in hibp.seen if s.path.endswith("/mirai-sec.co.jp")][:2]
    assert second - first >= 1.0
    assert {e.customer_id for e in await exposures(engine)} == {"H01", "H02"}


async def test_client_side_rate_limit_spaces_requests(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as hibp:
        serve_hibp(hibp)
        settings = await _setup(
            engine, database_url, tmp_path, hibp.url, EXPOSURE_HIBP_RATE_PER_MINUTE="300"
        )
        await run_now(engine, settings, "hibp")
    times = [s.at for s in hibp.seen]
    assert len(times) == 5  # two broker domains, three prefixes
    assert min(b - a for a, b in itertools.pairwise(times)) >= 0.19  # 60 / 300 s
