"""``GET /v1/cases``, ``GET /v1/cases/{case_id}`` and the reset service's acknowledgement
``POST /v1/cases/{case_id}/resolution``.

A case is one customer incident: the exposures one forced reset (or one notification) covers,
so a reset service acts per case. Resolving a case is recorded once, like resolving an
exposure: the same resolution again is an idempotent 200, a different one a 409. A
``reset_completed`` may carry the customer's new ``password_hash``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import ApiError, bad_request, not_found
from exposure.api.exposures import DEFAULT_LIMIT, MAX_LIMIT
from exposure.api.params import (
    decode_keyset,
    encode_keyset,
    parse_choice,
    parse_limit,
    parse_window,
    path_uuid,
    query_params,
    read_json,
)
from exposure.api.resolution_body import parse_resolution_body
from exposure.api.scopes import Scope
from exposure.domain.policy import Action
from exposure.store import case_queries
from exposure.store.case_queries import CASE_STATES, CaseDetail, CaseFilter, CaseKeyset
from exposure.triage import resolution
from exposure.triage.resolution import CaseResolutionRequest

routes = web.RouteTableDef()

LIST_PARAMS = ("state", "action", "since", "until", "limit", "cursor")


def encode_cursor(position: CaseKeyset) -> str:
    return encode_keyset(position.opened_at, position.case_id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _plain(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def _fields(value: Any) -> dict[str, Any]:
    return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}


def case_json(detail: CaseDetail) -> dict[str, Any]:
    """A case with its exposures and events, as ``GET /v1/cases/{case_id}`` returns it."""
    body = _fields(detail.case)
    body["exposures"] = [
        {**_fields(e), "site_domain": e.site_domain or None} for e in detail.exposures
    ]
    body["exposures_truncated"] = detail.exposures_total > len(detail.exposures)
    body["events"] = [_fields(e) for e in detail.events]
    return body


def _filter(params: dict[str, str]) -> CaseFilter:
    since, until = parse_window(params)
    return CaseFilter(
        state=parse_choice(params, "state", CASE_STATES),
        action=parse_choice(params, "action", [a.value for a in Action]),
        since=since,
        until=until,
    )


@routes.get("/v1/cases")
@requires(Scope.READ)
async def list_cases(request: web.Request) -> web.Response:
    """Cases oldest opened first, ``limit`` per page, each with its number of exposures; pass
    ``next_cursor`` back as ``cursor`` for the next page (null at the end)."""
    params = dict(query_params(request, LIST_PARAMS))
    where = _filter(params)
    limit = parse_limit(params, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    after = CaseKeyset(*decode_keyset(params["cursor"])) if params.get("cursor") else None
    async with request.app[keys.ENGINE].connect() as conn:
        page, following = await case_queries.case_page(conn, where, after=after, limit=limit)
    return web.json_response(
        {
            "cases": [_fields(item) for item in page],
            "next_cursor": None if following is None else encode_cursor(following),
        }
    )


async def _detail(request: web.Request, case_id: str) -> dict[str, Any]:
    async with request.app[keys.ENGINE].connect() as conn:
        detail = await case_queries.case_detail(conn, case_id)
    if detail is None:
        raise not_found("no case with this case_id")
    return case_json(detail)


@routes.get("/v1/cases/{case_id}")
@requires(Scope.READ)
async def get_case(request: web.Request) -> web.Response:
    """One case: its exposures (each with its number of sightings) and the webhook events
    that announced it."""
    query_params(request, ())
    return web.json_response(await _detail(request, path_uuid(request, "case_id")))


def resolution_request(body: Any, case_id: str) -> CaseResolutionRequest:
    """The body of a case resolution, its types checked (its values are the service's)."""
    parsed = parse_resolution_body(body)
    return CaseResolutionRequest(
        case_id=case_id,
        resolution=parsed.resolution,
        resolved_by=parsed.resolved_by,
        reason=parsed.reason,
        resolved_at=parsed.resolved_at,
        password_hash=parsed.password_hash,
    )


@routes.post("/v1/cases/{case_id}/resolution")
@requires(Scope.RESOLVE)
async def resolve_case(request: web.Request) -> web.Response:
    """The reset service ends a case: ``reset_completed`` (optionally with the customer's new
    ``password_hash``) or ``dismissed`` (optionally with a ``reason``). Every exposure of the
    case is resolved with it; the case is returned. Recorded in the audit log."""
    query_params(request, ())
    case_id = path_uuid(request, "case_id")
    wanted = resolution_request(await read_json(request), case_id)
    try:
        await resolution.resolve_case(
            request.app[keys.ENGINE], wanted, keys.actor_of(request), require_reason=False
        )
    except resolution.CaseNotFound:
        raise not_found("no case with this case_id") from None
    except resolution.AlreadyResolved as conflict:
        raise ApiError(409, "already_resolved", str(conflict)) from None
    except resolution.InvalidResolution as invalid:
        raise bad_request(invalid.problem, "invalid_body") from None
    return web.json_response(await _detail(request, case_id))
