"""The runner: cursors saved atomically with their page (crash simulations), one run per
connector at a time (PostgreSQL advisory lock / in-process guard), run records and status,
the registry, connector settings and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from connectors.base import Connector, ConnectorSettings, Cursor, Page, Stored, parse_schedule
from connectors.folder import FolderConnector
from connectors.hibp import HibpConnector, HibpSettings
from connectors.http_feed import HttpFeedConnector
from connectors.pwned_passwords import PwnedPasswordsConnector
from connectors.registry import BadPlugin, Registry, UnknownConnector, load_registry
from exposure.clock import utcnow
from exposure.dumps.records import LeakRecord
from exposure.errors import ConfigurationError, SkippableError
from exposure.ingest.connector_runner import RetryPolicy, connector_status
from exposure.ingest.pipeline import Finalizer, Ingestor
from exposure.ingest.results import IngestResult
from exposure.metrics import CONNECTOR_RUNS
from exposure.store.connectors import advisory_key
from exposure.store.models import ConnectorRun, IngestRun, OutboxEvent
from tests.cli import run_cli
from tests.conftest import environment
from tests.feeds import cursor, enrol, exposures, run_now, runs, serve, settings_for, sightings
from tests.leakgen import CURRENT

CUSTOMERS = [(f"R0{n}", f"runner.user{n}@example.jp", f"RUN0000{n}", CURRENT) for n in (1, 2, 3)]


class SimulatedCrash(Exception):
    """The process 'dies' here."""


class CrashAfterSecondPage(Ingestor):
    """Raises after the second page's ingest (data and cursor) committed."""

    pages = 0

    async def ingest_records(
        self,
        records: Sequence[LeakRecord],
        *,
        label: str,
        source: str,
        finalize: Finalizer | None = None,
    ) -> IngestResult:
        result = await super().ingest_records(
            records, label=label, source=source, finalize=finalize
        )
        CrashAfterSecondPage.pages += 1
        if CrashAfterSecondPage.pages == 2:
            raise SimulatedCrash
        return result


class FinalizeFailsOnSecondPage(Ingestor):
    """The second page's transaction writes the cursor and then dies before committing."""

    pages = 0

    async def ingest_records(
        self,
        records: Sequence[LeakRecord],
        *,
        label: str,
        source: str,
        finalize: Finalizer | None = None,
    ) -> IngestResult:
        FinalizeFailsOnSecondPage.pages += 1
        assert finalize is not None
        saver = finalize

        async def broken(conn: AsyncConnection) -> None:
            await saver(conn)
            raise SimulatedCrash

        wrapped = broken if FinalizeFailsOnSecondPage.pages == 2 else saver
        return await super().ingest_records(records, label=label, source=source, finalize=wrapped)


async def _paged_feed(engine: AsyncEngine, database_url: str, tmp_path: Path, url: str) -> Any:
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_HTTP_FEED_URL=url,
        EXPOSURE_HTTP_FEED_FORMAT="json",
        EXPOSURE_HTTP_FEED_PAGINATION="cursor",
    )
    await enrol(engine, settings, CUSTOMERS)
    return settings


def _serve_three_pages(feed: Any) -> None:
    pages = {"": (1, "c1"), "c1": (2, "c2"), "c2": (3, "c3"), "c3": (None, "c3")}

    async def paged(request: web.Request) -> web.Response:
        n, nxt = pages[request.query.get("cursor", "")]
        items = [] if n is None else [{"email": f"runner.user{n}@example.jp", "password": "x"}]
        return web.json_response({"items": items, "next_cursor": nxt})

    feed.handle("/feed", paged)


async def test_crash_after_a_page_committed_resumes_from_its_cursor(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    CrashAfterSecondPage.pages = 0
    async with serve() as feed:
        _serve_three_pages(feed)
        settings = await _paged_feed(engine, database_url, tmp_path, f"{feed.url}/feed")
        with pytest.raises(SimulatedCrash):
            await run_now(engine, settings, "http_feed", ingestor_type=CrashAfterSecondPage)
        # The cursor matches the data: two pages stored, the cursor of the second saved.
        assert await cursor(engine, "http_feed") == {"cursor": "c2"}
        assert [e.customer_id for e in await exposures(engine)] == ["R01", "R02"]
        [crashed] = await runs(engine)
        assert (crashed.outcome, crashed.error_class) == ("failed", "fatal")
        assert crashed.error == "unexpected SimulatedCrash; see the log"

        start = len(feed.seen)
        resumed = await run_now(engine, settings, "http_feed")
    assert resumed["outcome"] == "success" and resumed["pages"] == 1
    assert feed.seen[start].query["cursor"] == "c2"  # not from the beginning
    found = await exposures(engine)
    assert [e.customer_id for e in found] == ["R01", "R02", "R03"]
    assert all(e.occurrences == 1 for e in found) and len(await sightings(engine)) == 3


async def test_a_page_and_its_cursor_commit_together_or_not_at_all(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    FinalizeFailsOnSecondPage.pages = 0
    async with serve() as feed:
        _serve_three_pages(feed)
        settings = await _paged_feed(engine, database_url, tmp_path, f"{feed.url}/feed")
        with pytest.raises(SimulatedCrash):
            await run_now(engine, settings, "http_feed", ingestor_type=FinalizeFailsOnSecondPage)
        # Page 2's cursor did not commit. Its exposures may have (they are committed as they
        # are decided): the page is fetched again and its ingest resumed, never doubled.
        assert await cursor(engine, "http_feed") == {"cursor": "c1"}
        assert {e.customer_id for e in await exposures(engine)} <= {"R01", "R02"}

        resumed = await run_now(engine, settings, "http_feed")
    assert resumed["outcome"] == "success" and resumed["pages"] == 2
    found = await exposures(engine)
    assert [e.customer_id for e in found] == ["R01", "R02", "R03"]
    assert all(e.occurrences == 1 for e in found)
    async with engine.connect() as conn:
        states = (await conn.execute(select(IngestRun.state))).scalars().all()
    assert states == ["completed"] * 3  # the interrupted page's ingest was resumed, not doubled
    async with engine.connect() as conn:
        announced = (await conn.execute(select(OutboxEvent.exposure_id))).scalars().all()
    assert sorted(announced) == sorted({e.exposure_id for e in found if e.action != "none"})


@dataclass(frozen=True, slots=True, kw_only=True)
class NoSettings(ConnectorSettings):
    pass


class Gate(Connector[NoSettings]):
    """Holds its run open until released."""

    name = "gate"
    settings_type = NoSettings
    default_schedule = "every 1m"
    started = asyncio.Event()
    release = asyncio.Event()

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        Gate.started.set()
        await Gate.release.wait()
        yield Page(cursor={"runs": (cursor or {}).get("runs", 0) + 1})


class BadItem(Connector[NoSettings]):
    name = "bad_item"
    settings_type = NoSettings
    default_schedule = "every 1m"

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        yield Page(cursor={"ok": 1})
        raise SkippableError("one item cannot be read")


class Counting(Connector[NoSettings]):
    """Three pages, numbered in the cursor."""

    name = "counting"
    settings_type = NoSettings
    default_schedule = "every 1m"

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        for n in range((cursor or {}).get("n", 0) + 1, 4):
            stored = yield Page(cursor={"n": n})
            assert stored == Stored()  # what the runner sends back for a cursor-only page


async def test_a_stop_request_ends_the_run_after_the_current_page(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    registry = Registry([Counting])
    settings = settings_for(database_url, tmp_path)
    stop = asyncio.Event()
    stop.set()
    stopped = await run_now(engine, settings, "counting", registry=registry, stop=stop)
    assert (stopped["outcome"], stopped["pages"], stopped["stopped"]) == ("success", 1, True)
    assert await cursor(engine, "counting") == {"n": 1}
    rest = await run_now(engine, settings, "counting", registry=registry)
    assert (rest["pages"], rest["stopped"]) == (2, False)
    assert await cursor(engine, "counting") == {"n": 3}


def test_retry_policy_honours_and_bounds_retry_after() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=60.0)
    for failures in range(1, 8):
        delay = policy.delay(failures, None)
        assert delay is not None and 0 <= delay <= min(8.0, 2 ** (failures - 1))
    honoured = policy.delay(1, 30.0)
    assert honoured is not None and 30.0 <= honoured <= 30.25
    assert policy.delay(1, 3600.0) is None  # longer than we wait within a run: fail now


async def test_only_one_run_of_a_connector_at_a_time(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    Gate.started, Gate.release = asyncio.Event(), asyncio.Event()
    registry = Registry([Gate])
    settings = settings_for(database_url, tmp_path)
    before = CONNECTOR_RUNS.labels(connector="gate", outcome="skipped")._value.get()
    both = [
        asyncio.create_task(run_now(engine, settings, "gate", registry=registry)) for _ in (1, 2)
    ]
    done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
    await Gate.started.wait()
    [loser] = done
    assert loser.result()["outcome"] == "skipped" and loser.result()["run_id"] is not None
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            key = advisory_key("gate")
            held = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid::bigint = :high AND objid::bigint = :low AND granted"
                ),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
            )
        assert held == 1
    # A scheduled run (once=False) that loses records no row at all.
    quiet = await run_now(engine, settings, "gate", registry=registry, once=False)
    assert quiet["outcome"] == "skipped" and quiet["run_id"] is None
    Gate.release.set()
    await asyncio.gather(*both)
    outcomes = sorted(task.result()["outcome"] for task in both)
    assert outcomes == ["skipped", "success"]
    assert sorted(r.outcome for r in await runs(engine)) == ["skipped", "success"]
    after = CONNECTOR_RUNS.labels(connector="gate", outcome="skipped")._value.get()
    assert after - before == 2
    # The lock was released: the next run runs.
    again = await run_now(engine, settings, "gate", registry=registry)
    assert again["outcome"] == "success" and await cursor(engine, "gate") == {"runs": 2}


async def test_status_reports_last_success_and_failure_and_closes_dead_runs(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    Gate.started, Gate.release = asyncio.Event(), asyncio.Event()
    Gate.release.set()
    registry = Registry([Gate, BadItem])
    settings = settings_for(database_url, tmp_path)
    async with engine.begin() as conn:  # a run a killed process left behind
        await conn.execute(
            insert(ConnectorRun).values(connector="gate", started_at=utcnow(), outcome="running")
        )
    await run_now(engine, settings, "gate", registry=registry)
    failed = await run_now(engine, settings, "bad_item", registry=registry)
    assert (failed["outcome"], failed["error_class"], failed["pages"]) == ("failed", "skippable", 1)
    report = {r.connector: r for r in await connector_status(engine, ["folder"])}
    gate, bad_item = report["gate"], report["bad_item"]
    assert gate.last_success is not None and gate.last_failure is not None
    assert gate.last_success.pages == 1 and not gate.running
    assert (gate.last_failure.error or "").startswith("interrupted")
    assert bad_item.last_failure is not None
    assert bad_item.last_failure.error == "one item cannot be read"
    assert bad_item.last_success is None
    assert report["folder"].as_json() == {
        "connector": "folder",
        "runs": {},
        "running": False,
        "last_success": None,
        "last_failure": None,
        "cursor_updated_at": None,
    }
    async with engine.connect() as conn:
        assert (await conn.execute(select(ConnectorRun.outcome))).scalars().all().count(
            "running"
        ) == 0


def test_registry_settings_and_schedules() -> None:
    registry = load_registry()
    assert registry.get("folder") is FolderConnector and registry.get("hibp") is HibpConnector
    assert registry.get("http_feed") is HttpFeedConnector
    assert registry.get("pwned_passwords") is PwnedPasswordsConnector
    with pytest.raises(UnknownConnector, match="installed: folder, hibp, http_feed"):
        registry.get("nope")

    class Impostor(Gate):
        name = "folder"

    with pytest.raises(BadPlugin):
        registry.register(Impostor)

    with pytest.raises(ConfigurationError, match="EXPOSURE_HIBP_API_KEY: not set"):
        HibpSettings.from_environ({})
    with pytest.raises(ConfigurationError, match="EXPOSURE_HIBP_RATE_PER_MINUTE: must be"):
        HibpSettings.from_environ(
            {"EXPOSURE_HIBP_API_KEY": "k", "EXPOSURE_HIBP_RATE_PER_MINUTE": "x"}
        )
    secret = HibpSettings.from_environ({"EXPOSURE_HIBP_API_KEY": "invented-key-42"})
    assert "invented-key-42" not in repr(secret) and secret.api_key.reveal() == "invented-key-42"
    with pytest.raises(ConfigurationError, match="EXPOSURE_HTTP_FEED_PAGINATION"):
        HttpFeedConnector.settings_type.from_environ(
            {
                "EXPOSURE_HTTP_FEED_URL": "https://feed.example/x",
                "EXPOSURE_HTTP_FEED_FORMAT": "csv",
                "EXPOSURE_HTTP_FEED_PAGINATION": "since",
            }
        )
    assert FolderConnector.schedule({}).interval_seconds == 60
    assert HibpConnector.schedule({"EXPOSURE_HIBP_SCHEDULE": "15 2 * * *"}).cron == "15 2 * * *"
    assert parse_schedule("every  30 s").text == "every 30s"
    with pytest.raises(ConfigurationError, match="EXPOSURE_FOLDER_SCHEDULE"):
        FolderConnector.schedule({"EXPOSURE_FOLDER_SCHEDULE": "hourly"})
    every = {v.name for cls in registry for v in cls.variables()}
    assert {"EXPOSURE_FOLDER_PATH", "EXPOSURE_HIBP_API_KEY", "EXPOSURE_HTTP_FEED_URL"} <= every


async def test_cli_list_run_and_status(database_url: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "combo.txt").write_text("someone@example.org:pw\n")
    env = environment(
        database_url, EXPOSURE_FOLDER_PATH=str(inbox), EXPOSURE_FOLDER_SETTLE_SECONDS="0.1"
    )
    listed = json.loads(run_cli("connectors", "list", env=env, cwd=tmp_path).stdout)
    by_name = {c["name"]: c for c in listed["connectors"]}
    assert sorted(by_name) == ["folder", "hibp", "http_feed", "pwned_passwords"]
    assert by_name["folder"]["enabled"] and not by_name["hibp"]["enabled"]
    assert by_name["hibp"]["configured"] is False
    assert "EXPOSURE_HIBP_API_KEY" in by_name["hibp"]["problem"]
    path_variable = by_name["folder"]["variables"][0]
    assert (path_variable["name"], path_variable["set"]) == ("EXPOSURE_FOLDER_PATH", True)

    ran = run_cli("connectors", "run", "folder", "--once", env=env, cwd=tmp_path)
    summary = json.loads(ran.stdout)
    assert (summary["outcome"], summary["pages"], summary["records"]) == ("success", 1, 1)
    assert (inbox / "processed" / "combo.txt").exists()

    status = json.loads(run_cli("connectors", "status", env=env, cwd=tmp_path).stdout)
    folder = next(c for c in status["connectors"] if c["connector"] == "folder")
    assert folder["last_success"]["run_id"] == summary["run_id"] and folder["runs"] == {
        "success": 1
    }

    unknown = run_cli("connectors", "run", "nope", env=env, cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "unknown connector 'nope'" in unknown.stderr
    unconfigured = run_cli("connectors", "run", "hibp", env=env, cwd=tmp_path, check=False)
    assert unconfigured.returncode == 2 and "EXPOSURE_HIBP_API_KEY" in unconfigured.stderr
