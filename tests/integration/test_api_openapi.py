"""``/openapi.json`` describes every route (and nothing else), and schemathesis, driven by it
against a live server with a token of every scope, finds no server error."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api import create_app
from exposure.api.openapi import SPEC
from exposure.console import is_browser_only
from exposure.settings import Settings
from exposure.store.access_models import ApiToken
from exposure.store.models import Customer
from tests.integration.test_api_support import (
    T0,
    add_case,
    add_customer,
    add_exposure,
    add_leaked,
    api_client,
    live_server,
    make_token,
)

METHODS = {"get", "post", "put", "patch", "delete"}
README = Path(__file__).resolve().parents[2] / "README.md"
SCHEMATHESIS_TIMEOUT = 120


async def test_every_route_is_described_and_every_description_is_routed(
    engine: AsyncEngine, settings: Settings
) -> None:
    app = create_app(settings, engine)
    routed = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method.lower() in METHODS
        and not is_browser_only(route.handler)
    }
    browser_pages = {
        route.resource.canonical
        for route in app.router.routes()
        if route.resource is not None and is_browser_only(route.handler)
    }
    # The console's pages are for people: the README describes each of them instead.
    readme = README.read_text()
    assert browser_pages and not {p for p in browser_pages if f"`{p}`" not in readme}
    described = {
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }
    assert routed == described
    for path, item in SPEC["paths"].items():
        for operation in item.values():
            assert operation["summary"] and operation["responses"], path
            if operation["security"] and operation["security"] != [{}, {"bearer": []}]:
                assert "401" in operation["responses"] and "403" in operation["responses"], path
    async with api_client(settings, engine) as client:
        response = await client.get("/openapi.json")  # open, no token
        assert response.status == 200 and await response.json() == SPEC


@pytest.mark.timeout(SCHEMATHESIS_TIMEOUT + 60)
async def test_schemathesis_finds_no_server_error_and_reaches_every_operation(
    engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    await add_customer(engine, "C1")
    members = [
        await add_exposure(engine, "C1", first_seen=T0, kind=kind)
        for kind in ("email", "phone", "login_id")
    ]
    await add_case(engine, "C1", members, opened_at=T0, events=("exposure.force_reset",))
    await add_leaked(engine, {bytes.fromhex("ABCDE" + "0" * 35): 4})
    token = await make_token(engine)
    reports = tmp_path / "reports"
    reports.mkdir()
    for suffix, text in (
        ("html", "<html><body>report</body></html>"),
        ("csv", "exposure_id\n"),
        ("json", "{}"),
    ):
        (reports / f"exposure-report-2025-W20.{suffix}").write_text(text)
    settings = dataclasses.replace(settings, report_dir=reports)
    st = Path(sys.executable).with_name("st")
    async with live_server(create_app(settings, engine)) as base:
        process = await asyncio.create_subprocess_exec(
            str(st),
            "run",
            f"{base}/openapi.json",
            "--checks",
            # No 5xx, and every status, content type and body is the one the document declares.
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--max-examples",
            "30",
            "--seed",
            "20250512",
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
            "--request-timeout",
            "10",
            "--no-shrink",
            "--report",
            "har",
            "--report-dir",
            str(tmp_path / "report"),
            cwd=tmp_path,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "NO_COLOR": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), SCHEMATHESIS_TIMEOUT)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    # It really exercised the API: every operation, with the token accepted.
    operations = sum(1 for item in SPEC["paths"].values() for method in item if method in METHODS)
    # (schemathesis leaves out the path it loaded the document from)
    assert f"Tested: {operations - 1}" in report and "No issues found" in report, report
    async with engine.connect() as conn:
        used = (await conn.execute(select(ApiToken.last_used_at))).scalar_one()
        customers = (await conn.execute(select(func.count()).select_from(Customer))).scalar_one()
    assert used is not None
    assert customers > 1  # POST /v1/customers enrolled generated records
    # Every operation was reached past validation and auth at least once (the links in the
    # document lead the stateful phase from a listing to real exposure ids).
    succeeded = _succeeded_operations(tmp_path / "report")
    assert succeeded == {
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS and path != "/openapi.json"
    }


def _succeeded_operations(report_dir: Path) -> set[tuple[str, str]]:
    """(method, path template) of every 2xx exchange in schemathesis' HAR report."""
    templates = [
        (re.compile(re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(path)) + "$"), path)
        for path in SPEC["paths"]
    ]
    found: set[tuple[str, str]] = set()
    for har in report_dir.glob("*.json"):
        for entry in json.loads(har.read_text())["log"]["entries"]:
            if not 200 <= entry["response"]["status"] < 300:
                continue
            path = urlsplit(entry["request"]["url"]).path
            for pattern, template in templates:
                if pattern.match(path):
                    found.add((entry["request"]["method"].lower(), template))
    return found
