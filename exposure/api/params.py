"""Reading what a client sent: query parameters, timestamps, JSON bodies. Every problem is a
400/415 :class:`~exposure.api.errors.ApiError` whose message names the field, never its value."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from exposure.api.errors import ApiError, bad_request, safe_name
from exposure.clock import NaiveTimestamp, parse_iso

# A '+' in an unencoded query string arrives as a space: "...T09:00:00 09:00" meant "+09:00".
_SPACE_FOR_PLUS = re.compile(r"(T[0-9:.,]+) ([0-9]{2}(?::?[0-9]{2})?)$")


def query_params(request: web.Request, allowed: Collection[str]) -> Mapping[str, str]:
    """The query string as a plain mapping; unknown or repeated parameters are a 400, so a
    typo (``acton=notify``) is reported instead of silently returning everything."""
    query = request.query
    for name in query:
        if name not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise bad_request(
                f"unknown query parameter {safe_name(name)}; expected: {expected}",
                "invalid_parameter",
            )
        if len(query.getall(name)) > 1:
            raise bad_request(f"query parameter {name!r} given more than once", "invalid_parameter")
    return {name: query[name] for name in query}


def parse_timestamp(name: str, text: str, code: str = "invalid_parameter") -> datetime:
    """An ISO 8601 timestamp with a UTC offset (``Z`` or ``+09:00``), converted to UTC."""
    text = _SPACE_FOR_PLUS.sub(r"\1+\2", text.strip())
    try:
        return parse_iso(text)
    except NaiveTimestamp:
        raise bad_request(
            f"{name} must include a UTC offset (Z or +09:00): a bare local time is ambiguous",
            code,
        ) from None
    except ValueError:
        raise bad_request(
            f"{name} must be an ISO 8601 timestamp such as 2025-05-12T09:00:00+09:00", code
        ) from None
    except OverflowError:  # 0001-01-01T00:00+09:00 has no UTC equivalent
        raise bad_request(f"{name} is out of range", code) from None


def parse_int(name: str, text: str, *, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise bad_request(
            f"{name} must be a whole number from {low} to {high}", "invalid_parameter"
        )
    value = int(text)
    if not low <= value <= high:
        raise bad_request(f"{name} must be from {low} to {high}", "invalid_parameter")
    return value


def parse_choice(params: Mapping[str, str], name: str, choices: Collection[str]) -> str | None:
    """An optional parameter that must be one of ``choices``."""
    value = params.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}", "invalid_parameter")
    return value


def parse_window(params: Mapping[str, str]) -> tuple[datetime | None, datetime | None]:
    """The optional ``since`` (inclusive) and ``until`` (exclusive) bounds of a list."""
    since = parse_timestamp("since", params["since"]) if "since" in params else None
    until = parse_timestamp("until", params["until"]) if "until" in params else None
    if since is not None and until is not None and since >= until:
        raise bad_request("since must be earlier than until", "invalid_parameter")
    return since, until


def parse_limit(params: Mapping[str, str], *, default: int, maximum: int) -> int:
    """A list's page size: ``limit`` from 1 to ``maximum``, ``default`` when absent."""
    return (
        parse_int("limit", params["limit"], low=1, high=maximum) if "limit" in params else default
    )


def canonical_uuid(request: web.Request, name: str) -> str | None:
    """A UUID path segment in its canonical form, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(request.match_info[name]))
    except ValueError:
        return None


def path_uuid(request: web.Request, name: str) -> str:
    """A UUID path segment in its canonical form; anything else is a 400."""
    value = canonical_uuid(request, name)
    if value is None:
        raise bad_request(f"{name} must be a UUID", "invalid_parameter")
    return value


def encode_keyset(at: datetime, row_id: str) -> str:
    """A keyset position (a time and an id), opaque to clients: URL-safe base64 of
    ``[at, id]``."""
    raw = json.dumps([at.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_keyset(cursor: str) -> tuple[datetime, str]:
    """What :func:`encode_keyset` encoded; anything else is a 400 ``invalid_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        return parse_iso(at), str(uuid.UUID(row_id))
    except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
        raise bad_request(
            "cursor is not one this server issued; pass next_cursor back unchanged",
            "invalid_cursor",
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; it must be sent as ``application/json`` in UTF-8."""
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        )
    body = await request.read()  # aiohttp enforces client_max_size here (413)
    if not body.strip():
        raise bad_request("the request body is empty; send a JSON document", "invalid_json")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8", "invalid_json") from None
    try:
        # NaN and Infinity are not JSON; Python accepts them unless told not to.
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        # The position helps; the document itself (possibly identifiers) is never quoted.
        raise bad_request(
            f"the request body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}",
            "invalid_json",
        ) from None
    except ValueError:
        # parse_constant refused NaN/Infinity, or an integer has more digits than Python reads.
        raise bad_request(
            "the request body is not valid JSON: NaN, Infinity and integers of more than "
            "4300 digits are not accepted",
            "invalid_json",
        ) from None
    except RecursionError:
        raise bad_request("the request body nests too deeply", "invalid_json") from None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"{what} must be a JSON object", "invalid_body")
    return value
