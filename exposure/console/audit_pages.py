"""The audit log in the console: a filtered, paged view, and an export of the same filter
as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.scopes import Scope
from exposure.console.filters import PAGE_SIZE, audit_query
from exposure.console.render import query_with, render
from exposure.console.routing import browser_only, routes
from exposure.report.render import spreadsheet_safe
from exposure.store import audit as audit_log
from exposure.store.audit import EXPORT_COLUMNS, AuditAction, Channel


@routes.get("/audit")
@requires(Scope.READ, page=True)
@browser_only
async def audit_page(request: web.Request) -> web.Response:
    """Every change, newest first: who, what, when."""
    settings = request.app[keys.SETTINGS]
    query = audit_query(request.query, settings.timezone)
    async with request.app[keys.ENGINE].connect() as conn:
        entries, total = await audit_log.newest_first(
            conn, query.where, offset=(query.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        _, actors = await audit_log.distinct_values(conn)
    return render(
        request,
        "audit.html.j2",
        nav="audit",
        q=query,
        entries=entries,
        total=total,
        page_size=PAGE_SIZE,
        actions=[a.value for a in AuditAction],
        channels=[c.value for c in Channel],
        actors=actors,
        link=lambda **changes: query_with(request, **changes),
    )


@routes.get("/audit/export")
@requires(Scope.READ, page=True)
@browser_only
async def audit_export(request: web.Request) -> web.StreamResponse:
    """The entries the page's filter selects, oldest first, as ``format=csv`` (default) or
    ``jsonl``; streamed, so a long history does not sit in memory."""
    settings = request.app[keys.SETTINGS]
    kind = request.query.get("format", "csv")
    if kind not in ("csv", "jsonl"):
        kind = "csv"
    query = audit_query(request.query, settings.timezone)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8"
            if kind == "csv"
            else "application/x-ndjson; charset=utf-8",
            "Content-Disposition": f'attachment; filename="exposure-audit.{kind}"',
        }
    )
    await response.prepare(request)
    if kind == "csv":
        await response.write(_csv_line(EXPORT_COLUMNS))
    async with request.app[keys.ENGINE].connect() as conn:
        async for entry in audit_log.oldest_first(conn, query.where):
            if kind == "jsonl":
                line = json.dumps(entry.as_json(), ensure_ascii=False) + "\n"
                await response.write(line.encode())
            else:
                cells = [spreadsheet_safe(cell) for cell in entry.export_row()]
                await response.write(_csv_line(cells))
    await response.write_eof()
    return response


def _csv_line(cells: tuple[str, ...] | list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")
