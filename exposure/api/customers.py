"""``POST /v1/customers`` (bulk JSON enrolment) and ``DELETE /v1/customers/{customer_id}``.

The same rules as ``exposure enroll``: each record goes through
:meth:`~exposure.customers.enrolment.Enroller.build` and :func:`~exposure.customers.service.enrol`.
A bad record is rejected by its 0-based index in the request, with a reason and never its value; the
rest land.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from exposure import JsonValue
from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.errors import bad_request, not_found, safe_name
from exposure.api.params import query_params, read_json
from exposure.api.scopes import Scope
from exposure.customers import service as customer_service
from exposure.customers.enrolment import (
    COLUMNS,
    MAX_CUSTOMER_ID,
    Enroller,
    EnrolmentRow,
    HashRefused,
    RowRejected,
)
from exposure.settings import Settings

routes = web.RouteTableDef()

BODY_SHAPE = 'a JSON array of customer objects, or {"customers": [...]}'


def _enroller(settings: Settings) -> Enroller:
    return Enroller(
        settings.pepper.reveal(),
        login_id_case_sensitive=settings.login_id_case_sensitive,
        phone_region=settings.phone_region,
    )


def _record_problem(record: Any) -> str | None:
    """Why a JSON value cannot be read as a customer record (type checks the CSV never needs)."""
    if not isinstance(record, dict):
        return "not a JSON object"
    unknown = sorted(name for name in record if name not in COLUMNS)
    if unknown:
        names = ", ".join(safe_name(name) for name in unknown[:5])
        return f"unknown field(s) {names}; expected {', '.join(COLUMNS)}"
    for column in COLUMNS:
        value = record.get(column)
        if value is not None and not isinstance(value, str):
            return f"{column}: must be a string or null"
    return None


def build_items(enroller: Enroller, records: Sequence[Any]) -> list[EnrolmentRow | RowRejected]:
    """Records -> enrolment rows or rejections; "line" numbers are 1-based positions."""
    items: list[EnrolmentRow | RowRejected] = []
    for position, record in enumerate(records, start=1):
        problem = _record_problem(record)
        items.append(
            RowRejected(position, problem) if problem else enroller.build(position, record)
        )
    return items


def _records(payload: Any) -> list[Any]:
    if isinstance(payload, dict):
        if set(payload) != {"customers"}:
            raise bad_request(f"the body must be {BODY_SHAPE}", "invalid_body")
        payload = payload["customers"]
    if not isinstance(payload, list):
        raise bad_request(f"the body must be {BODY_SHAPE}", "invalid_body")
    return payload


@routes.post("/v1/customers")
@requires(Scope.ENROL)
async def enrol_customers(request: web.Request) -> web.Response:
    """Upsert customers; the response is the enrolment summary with rejections by index."""
    query_params(request, ())
    records = _records(await read_json(request))
    enroller = _enroller(request.app[keys.SETTINGS])
    # Normalising and fingerprinting thousands of records is CPU work: keep the loop free.
    items = await asyncio.to_thread(build_items, enroller, records)
    result = await customer_service.enrol(
        request.app[keys.ENGINE], items, actor=keys.actor_of(request)
    )

    def by_index(rows: Iterable[RowRejected | HashRefused]) -> list[JsonValue]:
        return [{"index": row.line_no - 1, "reason": row.reason} for row in rows]

    return web.json_response(
        result.as_json()
        | {
            "rejected_rows": by_index(result.rejected_rows),
            "hashes_refused_rows": by_index(result.hashes_refused_rows),
        }
    )


@routes.delete("/v1/customers/{customer_id}")
@requires(Scope.ENROL)
async def offboard_customer(request: web.Request) -> web.Response:
    """Offboarding: remove the customer, every fingerprint and (by cascade) its exposures."""
    query_params(request, ())
    customer_id = request.match_info["customer_id"]
    if len(customer_id) > MAX_CUSTOMER_ID or not customer_id.isprintable():
        raise bad_request(
            f"customer_id must be 1 to {MAX_CUSTOMER_ID} printable characters", "invalid_parameter"
        )
    deleted = await customer_service.offboard(
        request.app[keys.ENGINE],
        customer_id,
        actor=keys.actor_of(request),
        pepper=request.app[keys.SETTINGS].pepper.reveal(),
    )
    if not deleted:
        raise not_found("no customer with this customer_id is enrolled")
    return web.json_response({"customer_id": customer_id, "deleted": True})
