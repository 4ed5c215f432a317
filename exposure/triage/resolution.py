"""Resolving an exposure: ``reset_completed`` (the customer's password was reset) or
``dismissed`` (with a reason), recorded once, with its audit entry in the same transaction.

A resolution is recorded once. Repeating it with the same ``resolution`` changes nothing and
writes no audit entry (a retrying reset service cannot move time-to-reset figures); a
different ``resolution`` is refused with :class:`AlreadyResolved`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.errors import ExposureError, FatalError
from exposure.store import api_queries
from exposure.store import audit as audit_log
from exposure.store.api_queries import ResolveOutcome
from exposure.store.audit import Actor, AuditAction

RESOLUTIONS = ("reset_completed", "dismissed")
MAX_RESOLVED_BY = 128
MAX_REASON = 500
# A resolved_at this far ahead of our clock is a client bug, not clock skew.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


class ExposureNotFound(ExposureError):
    def __init__(self, exposure_id: str) -> None:
        self.exposure_id = exposure_id
        super().__init__(f"no exposure {exposure_id}")


class AlreadyResolved(ExposureError):
    """The exposure was resolved differently before; a resolution is recorded once."""

    def __init__(self, resolution: str) -> None:
        self.resolution = resolution
        super().__init__(
            f"this exposure was already resolved as {resolution}; a resolution is recorded once"
        )


class InvalidResolution(FatalError):
    """The request itself is wrong; ``field`` names what to fix."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolutionRequest:
    """``resolved_by`` names who or what resolved it; ``resolved_at`` defaults to now."""

    exposure_id: str
    resolution: str
    resolved_by: str
    reason: str | None = None
    resolved_at: datetime | None = None


def clean_reason(reason: str | None) -> str | None:
    """A reason as stored: trimmed, line breaks kept, no other control characters."""
    if reason is None:
        return None
    text = reason.replace("\r\n", "\n").strip()
    if not text:
        return None
    if len(text) > MAX_REASON or _CONTROL.search(text):
        raise InvalidResolution(
            "reason", f"the reason must be at most {MAX_REASON} characters of text"
        )
    return text


def _check(request: ResolutionRequest, *, require_reason: bool) -> str | None:
    if request.resolution not in RESOLUTIONS:
        raise InvalidResolution("resolution", f"resolution must be one of {', '.join(RESOLUTIONS)}")
    by = request.resolved_by
    if not by.strip() or len(by) > MAX_RESOLVED_BY or not by.isprintable():
        raise InvalidResolution(
            "resolved_by",
            f"resolved_by must be 1 to {MAX_RESOLVED_BY} printable characters naming who or "
            "what resolved it (e.g. reset-service)",
        )
    reason = clean_reason(request.reason)
    if require_reason and request.resolution == "dismissed" and reason is None:
        raise InvalidResolution("reason", "say why the exposure is dismissed (a reason)")
    return reason


async def resolve(
    engine: AsyncEngine,
    request: ResolutionRequest,
    actor: Actor,
    *,
    require_reason: bool = True,
    now: datetime | None = None,
) -> bool:
    """Record the resolution; True when this call recorded it, False when the same one was
    recorded before. ``require_reason``: a dismissal must say why (the console and the CLI;
    the API keeps the reason optional for the reset services written against it)."""
    reason = _check(request, require_reason=require_reason)
    now = now or utcnow()
    resolved_at = request.resolved_at or now
    if resolved_at > now + MAX_CLOCK_SKEW:
        raise InvalidResolution("resolved_at", "resolved_at is in the future")
    async with engine.begin() as conn:
        first_seen = await api_queries.exposure_first_seen(conn, request.exposure_id)
        if first_seen is None:
            raise ExposureNotFound(request.exposure_id)
        if resolved_at < first_seen:
            # It would make a negative time-to-reset in the weekly report.
            raise InvalidResolution(
                "resolved_at", "resolved_at is earlier than the exposure's first_seen"
            )
        outcome = await api_queries.resolve_exposure(
            conn,
            request.exposure_id,
            resolution=request.resolution,
            resolved_at=resolved_at,
            resolved_by=request.resolved_by.strip(),
        )
        if outcome is ResolveOutcome.NOT_FOUND:
            raise ExposureNotFound(request.exposure_id)  # offboarded meanwhile
        if outcome is ResolveOutcome.CONFLICT:
            current = await api_queries.get_exposure(conn, request.exposure_id)
            raise AlreadyResolved(str(current["resolution"]) if current else "?")
        if outcome is ResolveOutcome.SAME:
            return False
        detail: dict[str, str] = {
            "resolution": request.resolution,
            "resolved_by": request.resolved_by.strip(),
            "resolved_at": resolved_at.isoformat().replace("+00:00", "Z"),
        }
        if reason is not None:
            detail["reason"] = reason
        await audit_log.record(
            conn,
            actor,
            AuditAction.RESOLVED,
            target=request.exposure_id,
            detail=detail,
            at=now,
        )
    return True
