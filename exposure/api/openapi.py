"""The OpenAPI 3.0 description of the whole HTTP API, served at ``/openapi.json``.

Written by hand, next to the handlers it describes; ``tests/integration/test_api_openapi.py``
fails when a route exists without a description here or the other way round, and runs
schemathesis against it.
"""

from __future__ import annotations

from aiohttp import web

from exposure import JsonMapping, JsonObject
from exposure.api.audit import DEFAULT_LIMIT as AUDIT_DEFAULT_LIMIT
from exposure.api.audit import MAX_LIMIT as AUDIT_MAX_LIMIT
from exposure.api.auth import public
from exposure.api.exposures import DEFAULT_LIMIT, MAX_LIMIT
from exposure.api.password_range import PAD_MAX, PAD_MIN
from exposure.api.schemas import SCHEMAS, TIMESTAMP, ref
from exposure.customers.enrolment import MAX_CUSTOMER_ID

routes = web.RouteTableDef()

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
OPEN: list[dict[str, list[str]]] = []


def _json(schema: JsonMapping, description: str) -> JsonObject:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> JsonObject:
    return _json(ref("Error"), description)


def _errors(*statuses: int) -> JsonObject:
    text = {
        400: "Invalid parameter or body (the message names the field, never its value)",
        401: "Missing, malformed, unknown or revoked token (WWW-Authenticate: Bearer)",
        403: "The token lacks the scope this operation needs",
        404: "No such resource",
        409: "Already resolved differently",
        413: "The body exceeds EXPOSURE_API_MAX_BODY",
        415: "The body is not application/json",
        503: "The database is unavailable or not ready (the error code says why)",
    }
    return {str(status): _error(text[status]) for status in statuses}


def _param(name: str, where: str, schema: JsonMapping, description: str) -> JsonObject:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


def _paging(max_limit: int, default_limit: int, cursor: JsonMapping) -> list[JsonObject]:
    """The ``limit`` and ``cursor`` parameters every keyset-paged list takes."""
    return [
        _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": max_limit, "default": default_limit},
            "Page size",
        ),
        _param(
            "cursor",
            "query",
            dict(cursor),
            "next_cursor of the previous page (empty or absent: the first page)",
        ),
    ]


EXPOSURE_ID = _param(
    "exposure_id", "path", {"type": "string", "format": "uuid"}, "The exposure's id"
)

# Where a client (or schemathesis' stateful phase) finds ids for the follow-up operations.
_FIRST_ID: JsonObject = {"exposure_id": "$response.body#/exposures/0/exposure_id"}
CASE_ID = _param("case_id", "path", {"type": "string", "format": "uuid"}, "The case's id")
_FIRST_CASE: JsonObject = {"case_id": "$response.body#/cases/0/case_id"}
CASE_LINKS: JsonObject = {
    "GetCase": {"operationId": "getCase", "parameters": _FIRST_CASE},
    "ResolveCase": {"operationId": "resolveCase", "parameters": _FIRST_CASE},
}
PAGE_LINKS: JsonObject = {
    "GetExposure": {"operationId": "getExposure", "parameters": _FIRST_ID},
    "ResolveExposure": {"operationId": "resolveExposure", "parameters": _FIRST_ID},
}


def _op(
    operation_id: str,
    summary: str,
    responses: JsonMapping,
    *,
    security: list[dict[str, list[str]]],
    parameters: list[JsonObject] | None = None,
    body: JsonMapping | None = None,
    tag: str,
) -> JsonObject:
    operation: JsonObject = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "security": security,
        "parameters": parameters or [],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return operation


_AUTH_ERRORS = (401, 403)
PATHS: JsonObject = {
    "/healthz": {
        "get": _op(
            "healthz",
            "Liveness: the process serves requests (no database access)",
            {"200": _json(ref("Status"), "Alive")},
            security=OPEN,
            tag="operations",
        )
    },
    "/readyz": {
        "get": _op(
            "readyz",
            "Readiness: the database answers, with this code's schema and pepper",
            {"200": _json(ref("Status"), "Ready"), **_errors(503)},
            security=OPEN,
            tag="operations",
        )
    },
    "/metrics": {
        "get": _op(
            "metrics",
            "Prometheus metrics, including exposures by action and state read at scrape time",
            {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
            security=OPEN,
            tag="operations",
        )
    },
    "/openapi.json": {
        "get": _op(
            "openapi",
            "This document",
            {"200": _json({"type": "object"}, "The OpenAPI document")},
            security=OPEN,
            tag="operations",
        )
    },
    "/v1/customers": {
        "post": _op(
            "enrolCustomers",
            "Enrol customers (upsert); the same rules as `exposure enroll`. Scope: enrol",
            {
                "200": _json(ref("EnrolmentSummary"), "Summary; bad records listed by index"),
                **_errors(400, *_AUTH_ERRORS, 413, 415, 503),
            },
            security=BEARER,
            body=ref("EnrolmentRequest"),
            tag="customers",
        )
    },
    "/v1/customers/{customer_id}": {
        "delete": _op(
            "offboardCustomer",
            "Offboard a customer: the customer, every fingerprint and its exposures. Scope: enrol",
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "customer_id": {"type": "string"},
                            "deleted": {"type": "boolean"},
                        },
                    },
                    "Deleted",
                ),
                **_errors(400, *_AUTH_ERRORS, 404, 503),
            },
            security=BEARER,
            parameters=[
                _param(
                    "customer_id",
                    "path",
                    {"type": "string", "minLength": 1, "maxLength": MAX_CUSTOMER_ID},
                    "The broker's customer id",
                )
            ],
            tag="customers",
        )
    },
    "/v1/exposures": {
        "get": _op(
            "listExposures",
            "List exposures, oldest first, with keyset pagination. Scope: read",
            {
                "200": {**_json(ref("ExposurePage"), "One page"), "links": PAGE_LINKS},
                **_errors(400, *_AUTH_ERRORS, 503),
            },
            security=BEARER,
            parameters=[
                _param(
                    "action",
                    "query",
                    {"type": "string", "enum": ["force_reset", "notify", "none"]},
                    "Only this action",
                ),
                _param(
                    "state",
                    "query",
                    {"type": "string", "pattern": "^[a-z_]{1,16}$"},
                    "Only this state (open, reset_completed, dismissed)",
                ),
                _param("since", "query", TIMESTAMP, "first_seen at or after (with offset)"),
                _param("until", "query", TIMESTAMP, "first_seen before (with offset)"),
                *_paging(MAX_LIMIT, DEFAULT_LIMIT, {"type": "string"}),
            ],
            tag="exposures",
        )
    },
    "/v1/exposures/{exposure_id}": {
        "get": _op(
            "getExposure",
            "One exposure with its most recent sightings. Scope: read",
            {
                "200": _json(ref("ExposureDetail"), "The exposure"),
                **_errors(400, *_AUTH_ERRORS, 404, 503),
            },
            security=BEARER,
            parameters=[EXPOSURE_ID],
            tag="exposures",
        )
    },
    "/v1/exposures/{exposure_id}/resolution": {
        "post": _op(
            "resolveExposure",
            "Acknowledge an exposure (reset completed, optionally with the customer's new "
            "password_hash, or dismissed): its case, and so every open exposure of it, is "
            "resolved with it; recorded once, a repeat with the same resolution is a no-op 200, "
            "a different one 409. Scope: resolve",
            {
                "200": _json(ref("Exposure"), "The exposure as resolved"),
                **_errors(400, *_AUTH_ERRORS, 404, 409, 413, 415, 503),
            },
            security=BEARER,
            parameters=[EXPOSURE_ID],
            body=ref("Resolution"),
            tag="exposures",
        )
    },
    "/v1/cases": {
        "get": _op(
            "listCases",
            "List cases (one per customer incident), oldest opened first, with keyset "
            "pagination. Scope: read",
            {
                "200": {**_json(ref("CasePage"), "One page"), "links": CASE_LINKS},
                **_errors(400, *_AUTH_ERRORS, 503),
            },
            security=BEARER,
            parameters=[
                _param(
                    "state",
                    "query",
                    {"type": "string", "enum": ["open", "resolved"]},
                    "Only this state",
                ),
                _param(
                    "action",
                    "query",
                    {"type": "string", "enum": ["force_reset", "notify", "none"]},
                    "Only this action (the highest of the case's exposures)",
                ),
                _param("since", "query", TIMESTAMP, "opened_at at or after (with offset)"),
                _param("until", "query", TIMESTAMP, "opened_at before (with offset)"),
                *_paging(MAX_LIMIT, DEFAULT_LIMIT, {"type": "string"}),
            ],
            tag="cases",
        )
    },
    "/v1/cases/{case_id}": {
        "get": _op(
            "getCase",
            "One case with its exposures (and their sightings counts) and its webhook events. "
            "Scope: read",
            {
                "200": _json(ref("CaseDetail"), "The case"),
                **_errors(400, *_AUTH_ERRORS, 404, 503),
            },
            security=BEARER,
            parameters=[CASE_ID],
            tag="cases",
        )
    },
    "/v1/cases/{case_id}/resolution": {
        "post": _op(
            "resolveCase",
            "End a case (reset completed, optionally with the customer's new password_hash, or "
            "dismissed): every exposure of it is resolved with it; recorded once, a repeat with "
            "the same resolution is a no-op 200, a different one 409. Scope: resolve",
            {
                "200": _json(ref("CaseDetail"), "The case as resolved"),
                **_errors(400, *_AUTH_ERRORS, 404, 409, 413, 415, 503),
            },
            security=BEARER,
            parameters=[CASE_ID],
            body=ref("Resolution"),
            tag="cases",
        )
    },
    "/range/{prefix}": {
        "get": _op(
            "passwordRange",
            "Leaked-password corpus in the Pwned Passwords range format: CRLF-separated "
            "`SUFFIX:COUNT` lines. Open unless EXPOSURE_RANGE_PUBLIC=false (then scope: read)",
            {
                "200": {
                    "description": "35-hex upper-case suffixes and counts",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(400, *_AUTH_ERRORS, 503),
            },
            security=[{}, *BEARER],
            parameters=[
                _param(
                    "prefix",
                    "path",
                    {"type": "string", "pattern": "^[0-9A-Fa-f]{5}$"},
                    "The first 5 hex characters of the password's SHA-1 (any case)",
                ),
                _param(
                    "Add-Padding",
                    "header",
                    {"type": "string", "example": "true"},
                    f"true: pad with count-0 rows to {PAD_MIN}-{PAD_MAX} rows (any other "
                    "value: no padding)",
                ),
            ],
            tag="passwords",
        )
    },
}

_LANG = _param(
    "lang",
    "query",
    {"type": "string", "enum": ["ja", "en"]},
    "The report's language (default EXPOSURE_REPORT_LANG, else the other one)",
)
_FORMAT = _param(
    "format",
    "query",
    {"type": "string", "enum": ["html", "csv", "json"], "default": "html"},
    "html (self-contained page), csv (the week's new exposures) or json (every figure)",
)
_REPORT: JsonObject = {
    "200": {
        "description": "The report file",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    },
    **_errors(400, *_AUTH_ERRORS, 404),
}
PATHS |= {
    "/v1/audit": {
        "get": _op(
            "listAudit",
            "The audit log (who changed what, and when, through the console, the API or the "
            "CLI), oldest first, paged by entry. Scope: read",
            {
                "200": _json(ref("AuditPage"), "One page"),
                **_errors(400, *_AUTH_ERRORS, 503),
            },
            security=BEARER,
            parameters=[
                _param("action", "query", {"type": "string"}, "Only this kind of change"),
                _param(
                    "channel",
                    "query",
                    {"type": "string", "enum": ["console", "api", "cli"]},
                    "Only changes made here",
                ),
                _param("since", "query", TIMESTAMP, "at or after (with offset)"),
                _param("until", "query", TIMESTAMP, "before (with offset)"),
                *_paging(
                    AUDIT_MAX_LIMIT,
                    AUDIT_DEFAULT_LIMIT,
                    {"type": "string", "pattern": "^[0-9]{0,9}$"},
                ),
            ],
            tag="audit",
        )
    },
    "/dashboard": {
        "get": _op(
            "dashboard",
            "The console's dashboard (HTML): open exposures, forced resets past the SLA, "
            "connector runs, delivery health, the latest report. Scope: read (a bearer token, "
            "or a console session; a browser without either is sent to /signin)",
            {
                "200": {"description": "HTML page", "content": {"text/html": {}}},
                **_errors(*_AUTH_ERRORS, 503),
            },
            security=BEARER,
            tag="reports",
        )
    },
    "/reports/latest": {
        "get": _op(
            "latestReport",
            "The latest weekly report written by the daemon or `exposure report`. Scope: read",
            _REPORT,
            security=BEARER,
            parameters=[_FORMAT, _LANG],
            tag="reports",
        )
    },
    "/reports/{week}": {
        "get": _op(
            "weeklyReport",
            "The weekly report of an ISO week (Asia/Tokyo weeks by default). Scope: read",
            _REPORT,
            security=BEARER,
            parameters=[
                _param(
                    "week",
                    "path",
                    {"type": "string", "pattern": "^[0-9]{4}-W[0-9]{2}$", "example": "2025-W20"},
                    "ISO week, e.g. 2025-W20",
                ),
                _FORMAT,
                _LANG,
            ],
            tag="reports",
        )
    },
}

SPEC: JsonObject = {
    "openapi": "3.0.3",
    "info": {
        "title": "exposure",
        "version": "1",
        "description": "Leaked-credential exposure monitor: enrolment, exposures, resolutions, "
        "the audit log and the leaked-password range. The console's browser pages (/signin, "
        "/worklist, /exposures/{id}, /health, /audit, ...) are described in the README, not "
        'here. Errors are {"error": {"code", "message"}}.',
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "exp_<token_id>_<secret> from `exposure tokens create`",
            }
        },
    },
}


@routes.get("/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI document."""
    return web.json_response(SPEC)
