"""The weekly reports and the read-only dashboard, behind the API's ``read`` scope.

Reports are served from ``EXPOSURE_REPORT_DIR`` as the daemon wrote them (HTML, or the CSV and
JSON beside it with ``?format=``); the dashboard is rendered per request from the database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import error_response
from exposure.api.scopes import Scope
from exposure.report.builder import FILE_PREFIX, latest_report_json
from exposure.report.dashboard import render_dashboard
from exposure.report.weeks import InvalidWeek, IsoWeek

routes = web.RouteTableDef()

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def _link(file_name: str) -> str:
    week = file_name.removeprefix(FILE_PREFIX).split(".", 1)[0]
    return f"/reports/{week}"


@routes.get("/dashboard")
@requires(Scope.READ)
async def dashboard(request: web.Request) -> web.Response:
    page = await render_dashboard(
        request.app[keys.ENGINE], request.app[keys.SETTINGS], report_link=_link
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8")


@routes.get("/reports/latest")
@requires(Scope.READ)
async def latest(request: web.Request) -> web.StreamResponse:
    found = await asyncio.to_thread(latest_report_json, request.app[keys.SETTINGS].report_dir)
    if found is None:
        return error_response(404, "no_report", "no weekly report has been written yet")
    return await _serve(request, IsoWeek.parse(found.stem.removeprefix(FILE_PREFIX)))


@routes.get("/reports/{week}")
@requires(Scope.READ)
async def report(request: web.Request) -> web.StreamResponse:
    try:
        week = IsoWeek.parse(request.match_info["week"])
    except InvalidWeek:
        return error_response(400, "bad_week", "the week must look like 2025-W20")
    return await _serve(request, week)


async def _serve(request: web.Request, week: IsoWeek) -> web.StreamResponse:
    kind = request.query.get("format", "html")
    if kind not in CONTENT_TYPES:
        return error_response(400, "bad_format", "format must be html, csv or json")
    path: Path = request.app[keys.SETTINGS].report_dir / f"{FILE_PREFIX}{week}.{kind}"
    if not await asyncio.to_thread(path.is_file):
        return error_response(404, "no_report", f"no {kind} report for {week}")
    body = await asyncio.to_thread(path.read_bytes)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPES[kind]})
