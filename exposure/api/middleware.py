"""The API's middlewares, outermost first: JSON errors, the body size limit, authentication."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from exposure.api import keys
from exposure.api.auth import Handler, access_of
from exposure.api.errors import STATUS_CODES, ApiError, error_response
from exposure.store.reconnect import DatabaseUnavailable, is_transient

log = logging.getLogger("exposure.api")

# PostgreSQL's undefined_table and invalid_schema_name: `exposure db upgrade` was not run.
_SCHEMA_MISSING = frozenset({"42P01", "3F000"})

_MESSAGES = {
    404: "no such resource; GET /openapi.json lists every operation",
    405: "this method is not allowed here; the Allow header lists those that are",
}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the JSON error body; nothing a client sends can cause a 500."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.code, error.message, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects and successes raised as exceptions pass through
        if error.status == 413:
            return _too_large(request)
        headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        code = STATUS_CODES.get(error.status, "error")
        return error_response(
            error.status, code, _MESSAGES.get(error.status, error.reason), headers
        )
    except (OperationalError, InterfaceError, OSError, TimeoutError, DatabaseUnavailable):
        # The database went away mid-request (or, on SQLite, has no schema yet): transient
        # from the client's side, so say so and when to retry.
        log.warning("database unavailable during %s %s", request.method, request.path)
        return _unavailable()
    except ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) not in _SCHEMA_MISSING:
            raise
        log.warning("database has no schema during %s %s", request.method, request.path)
        return _unavailable()
    except asyncio.CancelledError:
        raise
    except Exception as error:
        if is_transient(error):  # a connection lost mid-statement
            log.warning("database connection lost during %s %s", request.method, request.path)
            return _unavailable()
        # The last line of defence, so the client gets the JSON shape and the log the
        # traceback (engines hide bound parameters, so no identifier reaches it).
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the server log")


def _unavailable() -> web.Response:
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; retry shortly (GET /readyz says why)",
        {"Retry-After": "5"},
    )


def _too_large(request: web.Request) -> web.Response:
    limit = request.app[keys.SETTINGS].api_max_body_bytes
    return error_response(
        413,
        "payload_too_large",
        f"the request body exceeds the {limit}-byte limit (EXPOSURE_API_MAX_BODY); "
        "send fewer records per request",
    )


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a declared oversize body before reading a byte of it. Chunked bodies are cut
    off by aiohttp's ``client_max_size`` while being read (also a 413)."""
    limit = request.app[keys.SETTINGS].api_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _too_large(request)
    return await handler(request)


@web.middleware
async def authentication(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Enforce each route's :class:`~exposure.api.auth.Access` marker.

    An unmarked route (one added without :func:`~exposure.api.auth.requires` or
    :func:`~exposure.api.auth.public`) needs a valid token of any scope: fail closed.
    """
    match_info = request.match_info
    if match_info.http_exception is not None:
        return await handler(request)  # unknown path or method: the router's 404/405
    if keys.TOKEN in request:
        return await handler(request)  # a console session already stands for a token
    access = access_of(match_info.route.handler)
    settings = request.app[keys.SETTINGS]
    if access is not None and not access.needs_token(settings):
        return await handler(request)
    authenticator = request.app[keys.AUTHENTICATOR]
    record = await authenticator.authenticate(request.headers.get("Authorization"))
    authenticator.authorize(record, access.scope if access is not None else None)
    request[keys.TOKEN] = record
    return await handler(request)


# Every HTML page (console, dashboard, reports): nothing from another origin, no script at
# all, no framing. Inline styles stay allowed: the charts are inline SVG that pygal styles
# with <style> elements and style attributes (a style cannot run code; the pages escape every
# value they show, so no one else's markup gets in to use it).
HTML_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: security headers on every response, errors included."""
    headers = response.headers
    html = (response.content_type or "").startswith("text/html")
    headers.setdefault("Content-Security-Policy", HTML_POLICY if html else OTHER_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with
    # a form, and the console refuses forms from an origin it cannot check.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if html or keys.TOKEN in request:
        # What a person or a token was shown stays out of shared and browser caches.
        headers.setdefault("Cache-Control", "no-store")
