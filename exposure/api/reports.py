"""The weekly reports, behind the ``read`` scope (a bearer token, or a console session).

Reports are served from ``EXPOSURE_REPORT_DIR`` as the daemon or ``exposure report`` wrote
them: the HTML, or the CSV and JSON beside it with ``?format=``, in the language ``?lang=``
asks for (default ``EXPOSURE_REPORT_LANG``, then the other language, then a file written
before reports were kept per language).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import error_response
from exposure.api.params import query_params
from exposure.api.scopes import Scope
from exposure.clock import utcnow
from exposure.report.builder import find_report, latest_report_json
from exposure.report.i18n import LANGUAGES
from exposure.report.weeks import InvalidWeek, IsoWeek

routes = web.RouteTableDef()

CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
PARAMS = ("format", "lang")


def _languages(request: web.Request, wanted: str | None) -> tuple[str, ...]:
    if wanted is not None:
        return (wanted,)
    first = request.app[keys.SETTINGS].report_lang
    return (first, *(lang for lang in LANGUAGES if lang != first))


@routes.get("/reports/latest")
@requires(Scope.READ, page=True)
async def latest(request: web.Request) -> web.StreamResponse:
    """The latest week written (a week that has not started never counts as the latest)."""
    settings = request.app[keys.SETTINGS]
    params = query_params(request, PARAMS)
    current = IsoWeek.containing(utcnow(), settings.timezone)
    found = await asyncio.to_thread(
        latest_report_json,
        settings.report_dir,
        langs=_languages(request, params.get("lang")),
        before=current,
    )
    if found is None:
        return error_response(404, "no_report", "no weekly report has been written yet")
    week = IsoWeek.parse(found.name.removeprefix("exposure-report-")[:8])
    return await _serve(request, week)


@routes.get("/reports/{week}")
@requires(Scope.READ, page=True)
async def report(request: web.Request) -> web.StreamResponse:
    try:
        week = IsoWeek.parse(request.match_info["week"])
    except InvalidWeek:
        return error_response(400, "bad_week", "the week must look like 2025-W20")
    return await _serve(request, week)


async def _serve(request: web.Request, week: IsoWeek) -> web.StreamResponse:
    params = query_params(request, PARAMS)
    kind = params.get("format", "html")
    if kind not in CONTENT_TYPES:
        return error_response(400, "bad_format", "format must be html, csv or json")
    lang = params.get("lang")
    if lang is not None and lang not in LANGUAGES:
        return error_response(400, "bad_lang", "lang must be ja or en")
    found = await asyncio.to_thread(
        find_report,
        request.app[keys.SETTINGS].report_dir,
        week,
        kind,
        _languages(request, lang),
    )
    if found is None:
        return error_response(404, "no_report", f"no {kind} report for {week}")
    body = await asyncio.to_thread(found.path.read_bytes)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPES[kind]})
