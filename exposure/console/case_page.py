"""One case in the console: the customer incident, its exposures (each linking to its own
page), the webhook events that announced it, its history; and the resolve form (reset
completed, or dismissed with a reason), which needs the ``resolve`` scope and ends every open
exposure of the case with it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.scopes import Scope
from exposure.console.guard import see_other
from exposure.console.render import refusal, render
from exposure.console.routing import browser_only, routes
from exposure.store import audit as audit_log
from exposure.store import case_queries
from exposure.store.worklist import SLA
from exposure.triage import resolution
from exposure.triage.resolution import RESOLUTIONS, CaseResolutionRequest

# What a redirect after resolving may report (anything else in the query is ignored).
DONE = ("resolved", "unchanged")
PROBLEMS = ("already_resolved",)


def _case_id(request: web.Request) -> str | None:
    try:
        return str(uuid.UUID(request.match_info["case_id"]))
    except ValueError:
        return None


async def _page(
    request: web.Request,
    case_id: str,
    *,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    form_error: str | None = None,
) -> web.Response:
    async with request.app[keys.ENGINE].connect() as conn:
        detail = await case_queries.case_detail(conn, case_id)
        if detail is None:
            return refusal(request, 404, "refusal.no_case")
        history = await audit_log.for_targets(conn, [case_id])
    done = request.query.get("done")
    problem = request.query.get("problem")
    case = detail.case
    return render(
        request,
        "case.html.j2",
        nav="worklist",
        status=status,
        c=case,
        # The SLA clock's state: open, or how the case ended.
        status_name=case.resolution or case.state,
        clock_start=case.force_reset_at or case.opened_at,
        exposures=detail.exposures,
        exposures_total=detail.exposures_total,
        events=detail.events,
        history=history,
        sla=SLA,
        resolutions=RESOLUTIONS,
        form=form or {},
        form_error=form_error,
        done=done if done in DONE else None,
        problem=problem if problem in PROBLEMS else None,
    )


@routes.get("/cases/{case_id}")
@requires(Scope.READ, page=True)
@browser_only
async def case_page(request: web.Request) -> web.Response:
    case_id = _case_id(request)
    if case_id is None:
        return refusal(request, 404, "refusal.no_case")
    return await _page(request, case_id)


@routes.post("/cases/{case_id}/resolve")
@requires(Scope.RESOLVE, page=True)
@browser_only
async def resolve_case(request: web.Request) -> web.Response:
    """The resolve form: ``reset_completed`` or ``dismissed`` (a reason required)."""
    case_id = _case_id(request)
    if case_id is None:
        return refusal(request, 404, "refusal.no_case")
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in ("resolution", "reason")}
    token = request[keys.TOKEN]
    wanted = CaseResolutionRequest(
        case_id=case_id,
        resolution=form["resolution"],
        resolved_by=f"console:{token.name}"[: resolution.MAX_RESOLVED_BY],
        reason=form["reason"] or None,
    )
    try:
        changed = await resolution.resolve_case(
            request.app[keys.ENGINE], wanted, keys.actor_of(request), require_reason=True
        )
    except resolution.CaseNotFound:
        return refusal(request, 404, "refusal.no_case")
    except resolution.AlreadyResolved:
        return see_other(f"/cases/{case_id}?problem=already_resolved")
    except resolution.InvalidResolution as invalid:
        return await _page(request, case_id, status=400, form=form, form_error=invalid.field)
    return see_other(f"/cases/{case_id}?done={'resolved' if changed else 'unchanged'}")
