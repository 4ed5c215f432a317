"""Resolving a case: ``reset_completed`` (the customer's password was reset) or
``dismissed`` (with a reason), recorded once, with its audit entry in the same transaction.

A resolution ends a case (docs/decisions/cases.md): resolving any exposure resolves its case
and every open exposure of it, the same way, at the same time, by the same hand, with one
audit entry (:func:`resolve`); :func:`resolve_case` takes the case id itself.

A resolution is recorded once. Repeating it with the same ``resolution`` changes nothing and
writes no audit entry (a retrying reset service cannot move time-to-reset figures); a
different ``resolution`` is refused with :class:`AlreadyResolved`.

``reset_completed`` makes the customer's enrolled hash out of date. It may carry the new
``password_hash`` (recognised like an enrolled one; a refused or unrecognised one is an
:class:`InvalidResolution` on ``password_hash``, and the value is never logged or echoed),
which replaces the enrolled hash; without one, the enrolled hash counts as superseded at
``resolved_at`` and leaked passwords are judged ``unknown`` until a new hash is enrolled
(docs/decisions/cases.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.clock import utcnow
from exposure.errors import ExposureError, FatalError
from exposure.passwords.schemes import RefusedHash, classify
from exposure.store import api_queries
from exposure.store import audit as audit_log
from exposure.store import cases as case_queries
from exposure.store import customers as customer_queries
from exposure.store.audit import Actor, AuditAction
from exposure.store.cases import ResolveOutcome

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


class CaseNotFound(ExposureError):
    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"no case {case_id}")


class AlreadyResolved(ExposureError):
    """The case (or exposure) was resolved differently before; a resolution is recorded once."""

    def __init__(self, resolution: str, *, what: str = "exposure") -> None:
        self.resolution = resolution
        super().__init__(
            f"this {what} was already resolved as {resolution}; a resolution is recorded once"
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
    # The customer's new enrolled hash, with reset_completed (never logged, never echoed).
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseResolutionRequest:
    """The same, for a case named by its id."""

    case_id: str
    resolution: str
    resolved_by: str
    reason: str | None = None
    resolved_at: datetime | None = None
    password_hash: str | None = field(default=None, repr=False)


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


def _check(
    request: ResolutionRequest | CaseResolutionRequest, *, require_reason: bool
) -> str | None:
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
    _check_password_hash(request.resolution, request.password_hash)
    return reason


def _check_password_hash(resolution: str, password_hash: str | None) -> None:
    if password_hash is None:
        return
    if resolution != "reset_completed":
        raise InvalidResolution(
            "password_hash", "a new password_hash goes with resolution reset_completed only"
        )
    classified = classify(password_hash)
    if isinstance(classified, RefusedHash):
        raise InvalidResolution("password_hash", f"password_hash is {classified.reason.message}")


def _moment(resolved_at: datetime | None, now: datetime) -> datetime:
    moment = resolved_at or now
    if moment > now + MAX_CLOCK_SKEW:
        raise InvalidResolution("resolved_at", "resolved_at is in the future")
    return moment


async def resolve(
    engine: AsyncEngine,
    request: ResolutionRequest,
    actor: Actor,
    *,
    require_reason: bool = True,
    now: datetime | None = None,
) -> bool:
    """Resolve the exposure's case (and so every open exposure of it); True when this call
    recorded it, False when the same one was recorded before. ``require_reason``: a
    dismissal must say why (the console and the CLI; the API keeps the reason optional for
    the reset services written against it)."""
    reason = _check(request, require_reason=require_reason)
    now = now or utcnow()
    resolved_at = _moment(request.resolved_at, now)
    async with engine.begin() as conn:
        first_seen = await api_queries.exposure_first_seen(conn, request.exposure_id)
        if first_seen is None:
            raise ExposureNotFound(request.exposure_id)
        if resolved_at < first_seen:
            # It would make a negative time-to-reset in the weekly report.
            raise InvalidResolution(
                "resolved_at", "resolved_at is earlier than the exposure's first_seen"
            )
        found, case_id = await case_queries.case_of_exposure(conn, request.exposure_id)
        if not found:
            raise ExposureNotFound(request.exposure_id)  # offboarded meanwhile
        if case_id is None:
            outcome = await api_queries.resolve_exposure(
                conn,
                request.exposure_id,
                resolution=request.resolution,
                resolved_at=resolved_at,
                resolved_by=request.resolved_by.strip(),
            )
        else:
            outcome = await case_queries.resolve_case(
                conn,
                case_id,
                resolution=request.resolution,
                resolved_at=resolved_at,
                resolved_by=request.resolved_by.strip(),
            )
        if outcome is ResolveOutcome.NOT_FOUND:
            raise ExposureNotFound(request.exposure_id)
        if outcome is ResolveOutcome.CONFLICT:
            current = await api_queries.get_exposure(conn, request.exposure_id)
            raise AlreadyResolved(str(current["resolution"]) if current else "?")
        if outcome is ResolveOutcome.SAME:
            return False
        await _after_resolution(
            conn,
            request,
            actor,
            reason=reason,
            resolved_at=resolved_at,
            case_id=case_id,
            action=AuditAction.RESOLVED,
            target=request.exposure_id,
            now=now,
        )
    return True


async def resolve_case(
    engine: AsyncEngine,
    request: CaseResolutionRequest,
    actor: Actor,
    *,
    require_reason: bool = True,
    now: datetime | None = None,
) -> bool:
    """Resolve a case and every open exposure of it; True when this call recorded it, False
    when the same resolution was recorded before (:class:`AlreadyResolved` when a different
    one was, :class:`CaseNotFound` when there is no such case)."""
    reason = _check(request, require_reason=require_reason)
    now = now or utcnow()
    resolved_at = _moment(request.resolved_at, now)
    async with engine.begin() as conn:
        case = await case_queries.get_case(conn, request.case_id)
        if case is None:
            raise CaseNotFound(request.case_id)
        if resolved_at < case.opened_at:
            raise InvalidResolution(
                "resolved_at", "resolved_at is earlier than the case's opened_at"
            )
        outcome = await case_queries.resolve_case(
            conn,
            request.case_id,
            resolution=request.resolution,
            resolved_at=resolved_at,
            resolved_by=request.resolved_by.strip(),
        )
        if outcome is ResolveOutcome.NOT_FOUND:
            raise CaseNotFound(request.case_id)
        if outcome is ResolveOutcome.CONFLICT:
            current = await case_queries.get_case(conn, request.case_id)
            resolution = current.resolution if current and current.resolution else "?"
            raise AlreadyResolved(resolution, what="case")
        if outcome is ResolveOutcome.SAME:
            return False
        await _after_resolution(
            conn,
            request,
            actor,
            reason=reason,
            resolved_at=resolved_at,
            case_id=request.case_id,
            action=AuditAction.CASE_RESOLVED,
            target=request.case_id,
            now=now,
        )
    return True


async def _after_resolution(
    conn: AsyncConnection,
    request: ResolutionRequest | CaseResolutionRequest,
    actor: Actor,
    *,
    reason: str | None,
    resolved_at: datetime,
    case_id: str | None,
    action: AuditAction,
    target: str,
    now: datetime,
) -> None:
    """What a recorded resolution changes beside the case: the customer's enrolled hash after
    a completed reset, and the one audit entry."""
    detail: dict[str, str] = {
        "resolution": request.resolution,
        "resolved_by": request.resolved_by.strip(),
        "resolved_at": resolved_at.isoformat().replace("+00:00", "Z"),
    }
    if case_id is not None:
        detail["case_id"] = case_id
    if reason is not None:
        detail["reason"] = reason
    if request.resolution == "reset_completed" and case_id is not None:
        case = await case_queries.get_case(conn, case_id)
        if case is not None:
            if request.password_hash is not None:
                await customer_queries.replace_password_hash(
                    conn, case.customer_id, request.password_hash, now=now
                )
                detail["enrolled_hash"] = "replaced"
            else:
                await customer_queries.supersede_password_hash(
                    conn, case.customer_id, at=resolved_at
                )
                detail["enrolled_hash"] = "superseded"
    await audit_log.record(conn, actor, action, target=target, detail=detail, at=now)
