"""The body of a resolution, shared by ``POST /v1/exposures/{exposure_id}/resolution`` and
``POST /v1/cases/{case_id}/resolution``: the same fields, the same type checks and the same
messages on both routes, so a reset service written against one works on the other.

Only types are checked here; the values (which resolution, who, the reason, whether the
``password_hash`` is a scheme enrolment accepts) are the resolution service's to judge. A
message names the field that is wrong, never the value that was sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exposure.api.errors import bad_request
from exposure.api.params import parse_timestamp, require_object
from exposure.triage.resolution import MAX_RESOLVED_BY, RESOLUTIONS

MAX_PASSWORD_HASH = 1024
RESOLUTION_FIELDS = ("resolution", "resolved_by", "resolved_at", "reason", "password_hash")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolutionBody:
    """What the reset service sent, its types checked."""

    resolution: str
    resolved_by: str
    reason: str | None
    resolved_at: datetime | None
    # The customer's new enrolled hash, with reset_completed (never logged, never echoed).
    password_hash: str | None = field(repr=False)


def _string(fields: dict[str, Any], name: str, problem: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_request(problem, "invalid_body")
    return value


def parse_resolution_body(body: Any) -> ResolutionBody:
    """The JSON body of a resolution, or a 400 ``invalid_body`` naming the field to fix."""
    fields = require_object(body, "the body")
    if set(fields) - set(RESOLUTION_FIELDS):
        raise bad_request(
            "unknown field(s); expected resolution, resolved_by and optionally resolved_at, "
            "reason and password_hash",
            "invalid_body",
        )
    chosen = _string(fields, "resolution", f"resolution must be one of {', '.join(RESOLUTIONS)}")
    by = _string(
        fields,
        "resolved_by",
        f"resolved_by must be 1 to {MAX_RESOLVED_BY} printable characters naming who or what "
        "resolved it (e.g. reset-service)",
    )
    if chosen is None or by is None:
        raise bad_request("resolution and resolved_by are required", "invalid_body")
    reason = _string(fields, "reason", "reason must be a string")
    password_hash = _string(fields, "password_hash", "password_hash must be a string")
    if password_hash is not None and len(password_hash) > MAX_PASSWORD_HASH:
        raise bad_request(
            f"password_hash must be at most {MAX_PASSWORD_HASH} characters", "invalid_body"
        )
    at_text = _string(fields, "resolved_at", "resolved_at must be an ISO 8601 timestamp string")
    return ResolutionBody(
        resolution=chosen,
        resolved_by=by,
        reason=reason,
        resolved_at=None
        if at_text is None
        else parse_timestamp("resolved_at", at_text, "invalid_body"),
        password_hash=password_hash,
    )
