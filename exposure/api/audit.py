"""``GET /v1/audit``: the audit log for scripts (export), oldest first, paged by entry id."""

from __future__ import annotations

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.params import parse_choice, parse_int, parse_limit, parse_window, query_params
from exposure.api.scopes import Scope
from exposure.store import audit as audit_log
from exposure.store.audit import AuditAction, AuditFilter, Channel

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMS = ("action", "channel", "since", "until", "limit", "cursor")


@routes.get("/v1/audit")
@requires(Scope.READ)
async def list_audit(request: web.Request) -> web.Response:
    """Audit entries in the order they were written; pass ``next_cursor`` back as
    ``cursor`` until it is null. ``since``/``until`` bound the entry time."""
    params = dict(query_params(request, PARAMS))
    since, until = parse_window(params)
    where = AuditFilter(
        action=parse_choice(params, "action", [a.value for a in AuditAction]),
        channel=parse_choice(params, "channel", [c.value for c in Channel]),
        since=since,
        until=until,
    )
    limit = parse_limit(params, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    after = (
        parse_int("cursor", params["cursor"], low=0, high=2**31 - 1) if params.get("cursor") else 0
    )
    async with request.app[keys.ENGINE].connect() as conn:
        entries = [
            entry
            async for entry in audit_log.oldest_first(conn, where, after_id=after, limit=limit + 1)
        ]
    page = entries[:limit]
    following = str(page[-1].id) if len(entries) > limit else None
    return web.json_response(
        {"entries": [entry.as_json() for entry in page], "next_cursor": following}
    )
