"""``GET /v1/exposures``, ``GET /v1/exposures/{exposure_id}`` and the broker's resolution ack
``POST /v1/exposures/{exposure_id}/resolution``. Exposures carry masked hints only.

A resolution is recorded once. Repeating it with the same ``resolution`` is an idempotent 200
that returns the exposure unchanged (the first ``resolved_at``/``resolved_by`` stay, so a retrying
reset service cannot move time-to-reset figures); a different ``resolution`` is a 409.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import ApiError, bad_request, not_found
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
from exposure.store import api_queries
from exposure.store.api_queries import ApiExposure, ExposureFilter, Keyset
from exposure.triage import resolution
from exposure.triage.resolution import ResolutionRequest

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SIGHTINGS = 1000
_STATE = re.compile(r"[a-z_]{1,16}")
LIST_PARAMS = ("action", "state", "since", "until", "limit", "cursor")


def encode_cursor(position: Keyset) -> str:
    return encode_keyset(position.first_seen, position.exposure_id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _exposure_json(item: ApiExposure) -> dict[str, Any]:
    """The JSON body of an exposure: its fields, times in ISO 8601."""
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in item.items()}


def _filter(params: dict[str, str]) -> ExposureFilter:
    action = parse_choice(params, "action", [a.value for a in Action])
    state = params.get("state")
    if state is not None and not _STATE.fullmatch(state):
        raise bad_request(
            "state must be a state name such as open, reset_completed or dismissed",
            "invalid_parameter",
        )
    since, until = parse_window(params)
    return ExposureFilter(action=action, state=state, since=since, until=until)


@routes.get("/v1/exposures")
@requires(Scope.READ)
async def list_exposures(request: web.Request) -> web.Response:
    """Exposures oldest first (by ``first_seen``, then id), ``limit`` per page; pass
    ``next_cursor`` back as ``cursor`` for the next page (null at the end)."""
    params = dict(query_params(request, LIST_PARAMS))
    where = _filter(params)
    limit = parse_limit(params, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    after = Keyset(*decode_keyset(params["cursor"])) if params.get("cursor") else None
    async with request.app[keys.ENGINE].connect() as conn:
        page, following = await api_queries.exposure_page(conn, where, after=after, limit=limit)
    return web.json_response(
        {
            "exposures": [_exposure_json(item) for item in page],
            "next_cursor": None if following is None else encode_cursor(following),
        }
    )


@routes.get("/v1/exposures/{exposure_id}")
@requires(Scope.READ)
async def get_exposure(request: web.Request) -> web.Response:
    """One exposure and its most recent sightings (where and when it was seen)."""
    query_params(request, ())
    exposure_id = path_uuid(request, "exposure_id")
    async with request.app[keys.ENGINE].connect() as conn:
        item = await api_queries.get_exposure(conn, exposure_id)
        if item is None:
            raise not_found("no exposure with this exposure_id")
        seen, total = await api_queries.exposure_sightings(conn, exposure_id, limit=MAX_SIGHTINGS)
    body = _exposure_json(item)
    body["sightings"] = [
        {
            "source": s["source"],
            "file": s["file"],
            "line": s["line_no"],
            "leak_type": s["leak_type"],
            "seen_at": _iso(s["seen_at"]),
        }
        for s in seen
    ]
    body["sightings_total"] = total
    body["sightings_truncated"] = total > len(seen)
    return web.json_response(body)


def resolution_request(body: Any, exposure_id: str) -> ResolutionRequest:
    """The body of an exposure resolution, its types checked (its values are the service's)."""
    parsed = parse_resolution_body(body)
    return ResolutionRequest(
        exposure_id=exposure_id,
        resolution=parsed.resolution,
        resolved_by=parsed.resolved_by,
        reason=parsed.reason,
        resolved_at=parsed.resolved_at,
        password_hash=parsed.password_hash,
    )


@routes.post("/v1/exposures/{exposure_id}/resolution")
@requires(Scope.RESOLVE)
async def resolve_exposure(request: web.Request) -> web.Response:
    """The broker's reset service acknowledges an exposure: ``reset_completed`` (optionally
    with the customer's new ``password_hash``, which replaces the enrolled one) or
    ``dismissed`` (optionally with a ``reason``). The exposure's case, and so every open
    exposure of it, takes the resolution; the exposure is returned. A recorded resolution is
    written to the audit log."""
    query_params(request, ())
    exposure_id = path_uuid(request, "exposure_id")
    wanted = resolution_request(await read_json(request), exposure_id)
    engine = request.app[keys.ENGINE]
    try:
        await resolution.resolve(engine, wanted, keys.actor_of(request), require_reason=False)
    except resolution.ExposureNotFound:
        raise not_found("no exposure with this exposure_id") from None
    except resolution.AlreadyResolved as conflict:
        raise ApiError(409, "already_resolved", str(conflict)) from None
    except resolution.InvalidResolution as invalid:
        raise bad_request(invalid.problem, "invalid_body") from None
    async with engine.connect() as conn:
        item = await api_queries.get_exposure(conn, exposure_id)
    if item is None:
        raise not_found("no exposure with this exposure_id")  # offboarded meanwhile
    return web.json_response(_exposure_json(item))
