"""``GET /v1/audit``: the audit log for scripts (export), oldest first, paged by entry id."""

from __future__ import annotations

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import bad_request
from exposure.api.params import parse_int, parse_timestamp, query_params
from exposure.api.scopes import Scope
from exposure.store import audit as audit_log
from exposure.store.audit import AuditAction, AuditFilter, Channel

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMS = ("action", "channel", "since", "until", "limit", "cursor")


def _choice(params: dict[str, str], name: str, choices: list[str]) -> str | None:
    value = params.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}", "invalid_parameter")
    return value


@routes.get("/v1/audit")
@requires(Scope.READ)
async def list_audit(request: web.Request) -> web.Response:
    """Audit entries in the order they were written; pass ``next_cursor`` back as
    ``cursor`` until it is null. ``since``/``until`` bound the entry time."""
    params = dict(query_params(request, PARAMS))
    where = AuditFilter(
        action=_choice(params, "action", [a.value for a in AuditAction]),
        channel=_choice(params, "channel", [c.value for c in Channel]),
        since=parse_timestamp("since", params["since"]) if "since" in params else None,
        until=parse_timestamp("until", params["until"]) if "until" in params else None,
    )
    limit = (
        parse_int("limit", params["limit"], low=1, high=MAX_LIMIT)
        if "limit" in params
        else DEFAULT_LIMIT
    )
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
