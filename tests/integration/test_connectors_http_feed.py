"""The http_feed connector against a local feed server: formats, pagination styles, validators,
loop detection, error classes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store.models import ConnectorRun, IngestRun
from tests.feeds import (
    Reply,
    cursor,
    enrol,
    exposures,
    run_now,
    runs,
    serve,
    settings_for,
    sightings,
)
from tests.leakgen import CURRENT, OLD

TOKEN = "Bearer invented-feed-token-31337"
SITE = "https://trade.mirai-sec.co.jp/login"
CUSTOMERS = [
    ("F01", "feed.user1@example.jp", "FDU00001", CURRENT),
    ("F02", "feed.user2@example.jp", "FDU00002", ""),
    ("F03", "feed.user3@example.jp", "FDU00003", CURRENT),
    ("F04", "feed.user4@example.jp", "FDU00004", ""),
    ("F05", "feed.user5@example.jp", "FDU00005", ""),
]


def item(n: int, **extra: Any) -> dict[str, Any]:
    return {"email": f"feed.user{n}@example.jp", "timestamp": f"2025-05-0{n}T00:00:00Z", **extra}


def lines(*objects: Any) -> str:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objects) + "\n"


async def _setup(
    engine: AsyncEngine, database_url: str, tmp_path: Path, url: str, **variables: str
) -> Any:
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_HTTP_FEED_URL=url,
        EXPOSURE_HTTP_FEED_AUTH_VALUE=TOKEN,
        **variables,
    )
    await enrol(engine, settings, CUSTOMERS)
    return settings


async def test_json_lines_bad_line_feed_alert_and_validators(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as feed:
        body = lines(
            item(1, password=CURRENT, site=SITE),
            "{not json",
            item(2),  # no credential: a feed alert
            {"password": "no-login-here"},
            item(3, password=OLD),
        )
        validators = {"ETag": '"v1"', "Last-Modified": "Mon, 12 May 2025 01:02:03 GMT"}
        feed.script("/leaks", Reply(body=body, headers=validators))
        settings = await _setup(engine, database_url, tmp_path, f"{feed.url}/leaks")
        first = await run_now(engine, settings, "http_feed")

        assert first["outcome"] == "success" and first["pages"] == 1 and first["records"] == 3
        assert first["skipped"] == {"bad_json": 1, "no_login": 1}
        assert first["error_class"] == "skippable" and "bad_json=1" in first["error"]
        assert feed.seen[0].headers["authorization"] == TOKEN
        assert feed.seen[0].headers["user-agent"].startswith("exposure/")
        found = {e.customer_id: e for e in await exposures(engine)}
        assert (found["F01"].action, found["F01"].password_status) == ("force_reset", "live")
        assert found["F01"].site_domain == "trade.mirai-sec.co.jp"
        assert (found["F02"].leak_type, found["F02"].password_status) == ("feed_alert", "absent")
        assert (found["F03"].action, found["F03"].password_status) == ("notify", "stale")
        assert all(e.source == "http_feed" for e in found.values())
        saved = await cursor(engine, "http_feed")
        assert saved["etag"] == '"v1"' and saved["last_modified"].startswith("Mon, 12 May")

        # The server honours the validators: 304 is "nothing new", not an error.
        async def conditional(request: web.Request) -> web.Response:
            if request.headers.get("If-None-Match") == '"v1"':
                return web.Response(status=304)
            return web.Response(text=body)

        feed.handle("/leaks", conditional)
        before = len(await sightings(engine))
        second = await run_now(engine, settings, "http_feed")
        assert second["outcome"] == "success" and second["pages"] == 0
        assert feed.seen[-1].headers["if-modified-since"] == validators["Last-Modified"]

        # A server without validators sending the same body: the keyed digest recognises it.
        feed.handle("/leaks", lambda request: _text(body))
        third = await run_now(engine, settings, "http_feed")
        assert third["pages"] == 0 and len(await sightings(engine)) == before


async def _text(body: str) -> web.Response:
    return web.Response(text=body)


async def test_cursor_pagination_resumes_and_stops_on_a_loop(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    pages = {"": ([item(1)], "c1"), "c1": ([item(2)], "c2"), "c2": ([], "c2")}

    async def paged(request: web.Request) -> web.Response:
        assert request.query["limit"] == "1"
        items, nxt = pages[request.query.get("cursor", "")]
        return web.json_response({"items": items, "next_cursor": nxt})

    async with serve() as feed:
        feed.handle("/v1/leaks", paged)
        settings = await _setup(
            engine,
            database_url,
            tmp_path,
            f"{feed.url}/v1/leaks",
            EXPOSURE_HTTP_FEED_FORMAT="json",
            EXPOSURE_HTTP_FEED_PAGINATION="cursor",
            EXPOSURE_HTTP_FEED_PAGE_SIZE="1",
        )
        first = await run_now(engine, settings, "http_feed")
        assert (first["outcome"], first["pages"], first["records"]) == ("success", 2, 2)
        assert [s.query.get("cursor") for s in feed.seen] == [None, "c1", "c2"]
        assert await cursor(engine, "http_feed") == {"cursor": "c2"}

        second = await run_now(engine, settings, "http_feed")
        assert second["pages"] == 0 and feed.seen[-1].query["cursor"] == "c2"
        assert len(await exposures(engine)) == 2

        # A vendor bug: the same next cursor forever, with items each time.
        async def stuck(request: web.Request) -> web.Response:
            return web.json_response({"items": [item(3)], "next_cursor": "stuck"})

        feed.handle("/v1/leaks", stuck)
        looped = await run_now(engine, settings, "http_feed")
    assert looped["outcome"] == "failed" and looped["error_class"] == "fatal"
    assert "pagination loop" in looped["error"] and "cursor=" not in looped["error"]
    assert looped["pages"] == 2  # the pages before the loop are stored, with their cursor
    assert (await cursor(engine, "http_feed"))["cursor"] == "stuck"


async def test_since_pagination(engine: AsyncEngine, database_url: str, tmp_path: Path) -> None:
    every = [item(n) for n in range(1, 6)]

    async def since(request: web.Request) -> web.Response:
        after = request.query.get("since", "")
        newer = [i for i in every if i["timestamp"] > after][: int(request.query["limit"])]
        return web.Response(text=lines(*newer))

    async with serve() as feed:
        feed.handle("/since", since)
        settings = await _setup(
            engine,
            database_url,
            tmp_path,
            f"{feed.url}/since",
            EXPOSURE_HTTP_FEED_PAGINATION="since",
            EXPOSURE_HTTP_FEED_PAGE_SIZE="2",
        )
        first = await run_now(engine, settings, "http_feed")
        assert (first["pages"], first["records"]) == (3, 5)
        assert [s.query.get("since") for s in feed.seen] == [
            None,
            "2025-05-02T00:00:00Z",
            "2025-05-04T00:00:00Z",
        ]
        assert (await cursor(engine, "http_feed"))["since"] == "2025-05-05T00:00:00Z"
        second = await run_now(engine, settings, "http_feed")
    assert second["pages"] == 0 and feed.seen[-1].query["since"] == "2025-05-05T00:00:00Z"
    assert {e.customer_id for e in await exposures(engine)} == {f"F0{n}" for n in range(1, 6)}


async def test_next_links_from_header_and_envelope(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as feed:
        feed.script(
            "/p1",
            Reply(body={"items": [item(1)]}, headers={"Link": '</p2?page=2>; rel="next"'}),
        )
        feed.script("/p2", Reply(body={"items": [item(2)], "next": "/p3"}))
        feed.script("/p3", Reply(body={"items": [item(3)]}, headers={"ETag": '"p3"'}))
        settings = await _setup(
            engine,
            database_url,
            tmp_path,
            f"{feed.url}/p1",
            EXPOSURE_HTTP_FEED_FORMAT="json",
            EXPOSURE_HTTP_FEED_PAGINATION="next",
        )
        first = await run_now(engine, settings, "http_feed")
        assert (first["pages"], feed.paths()) == (3, ["/p1", "/p2", "/p3"])
        saved = await cursor(engine, "http_feed")
        assert saved["url"].endswith("/p3") and saved["etag"] == '"p3"'
        # The next run re-polls the last page, conditionally.
        feed.script("/p3", Reply(status=304))
        second = await run_now(engine, settings, "http_feed")
    assert second["pages"] == 0 and feed.seen[-1].headers["if-none-match"] == '"p3"'


def _spools() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("exposure-feed-*"))


async def test_csv_download_is_spooled_and_ingested_as_a_file(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    csv = f"email,password,url\nfeed.user1@example.jp,{CURRENT},{SITE}\nstranger@example.org,x,\n"
    spools_before = _spools()
    async with serve() as feed:
        disposition = {"Content-Disposition": 'attachment; filename="../leak-2025-05.csv"'}
        feed.script("/export", Reply(body=csv, headers=disposition))
        settings = await _setup(
            engine, database_url, tmp_path, f"{feed.url}/export", EXPOSURE_HTTP_FEED_FORMAT="csv"
        )
        summary = await run_now(engine, settings, "http_feed")
    assert (summary["outcome"], summary["records"], summary["matched"]) == ("success", 2, 1)
    [found] = await exposures(engine)
    assert (found.customer_id, found.action, found.leak_type) == (
        "F01",
        "force_reset",
        "breach_record",
    )
    async with engine.connect() as conn:
        names = (await conn.execute(select(IngestRun.input_name))).scalars().all()
    assert names == ["leak-2025-05.csv"]  # the server's name, without its path
    assert _spools() == spools_before  # the spooled download is gone


async def test_unauthorised_is_fatal_without_the_secret(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as feed:
        feed.script("/leaks", Reply(status=401))
        settings = await _setup(engine, database_url, tmp_path, f"{feed.url}/leaks?key=hidden")
        summary = await run_now(engine, settings, "http_feed")
    assert summary["outcome"] == "failed" and summary["error_class"] == "fatal"
    assert "EXPOSURE_HTTP_FEED_AUTH_VALUE" in summary["error"] and "401" in summary["error"]
    assert "invented-feed-token" not in summary["error"] and "hidden" not in summary["error"]
    assert len(feed.seen) == 1  # fatal: not retried
    [row] = await runs(engine)
    assert (row.outcome, row.error_class, row.error) == ("failed", "fatal", summary["error"])


async def test_server_errors_back_off_then_succeed_or_fail_retriable(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    async with serve() as feed:
        feed.script("/leaks", Reply(status=503), Reply(body=lines(item(1))))
        settings = await _setup(engine, database_url, tmp_path, f"{feed.url}/leaks")
        recovered = await run_now(engine, settings, "http_feed")
        assert (recovered["outcome"], recovered["retries"], recovered["pages"]) == ("success", 1, 1)

        feed.script("/leaks", Reply(status=502))
        seen = len(feed.seen)
        failed = await run_now(engine, settings, "http_feed")
    assert failed["outcome"] == "failed" and failed["error_class"] == "retriable"
    assert len(feed.seen) - seen == 3  # FAST.attempts, then the next scheduled run tries again
    async with engine.connect() as conn:
        outcomes = (await conn.execute(select(ConnectorRun.outcome))).scalars().all()
    assert sorted(outcomes) == ["failed", "success"]
