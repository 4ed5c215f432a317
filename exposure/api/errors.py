"""The one error shape of the HTTP API: ``{"error": {"code": "...", "message": "..."}}``.

Handlers raise :class:`ApiError`; the error middleware turns it (and aiohttp's own HTTP
exceptions: 404, 405, 413) into that body. Messages describe what was wrong with the
request, never the value that was sent: a request body may carry plaintext identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

# aiohttp's own exceptions, by status, get these codes.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "service_unavailable",
}

_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,39}")


class ApiError(Exception):
    """A client-visible failure with an HTTP status, a stable code and a clear message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def safe_name(name: str) -> str:
    """A client-chosen name (query parameter, JSON key) fit to quote back, or a placeholder:
    a name is quoted only when it looks like a field name, never like an identifier."""
    return repr(name) if _SAFE_NAME.fullmatch(name) else "(a name that is not shown)"
