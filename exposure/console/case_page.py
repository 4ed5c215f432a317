"""One case in the console: the customer incident, its exposures (each linking to its own
page), the webhook events that announced it, its history; and the resolve form (reset
completed, or dismissed with a reason), which needs the ``resolve`` scope and ends every open
exposure of the case with it."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.params import canonical_uuid
from exposure.api.scopes import Scope
from exposure.console.render import refusal, render
from exposure.console.resolve_form import resolve_from_form
from exposure.console.routing import browser_only, routes
from exposure.domain.cases import RESET_SLA
from exposure.store import audit as audit_log
from exposure.store import case_queries
from exposure.triage import resolution
from exposure.triage.resolution import RESOLUTIONS, CaseResolutionRequest

# What a redirect after resolving may report (anything else in the query is ignored).
DONE = ("resolved", "unchanged")
PROBLEMS = ("already_resolved",)


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
        sla=RESET_SLA,
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
    case_id = canonical_uuid(request, "case_id")
    if case_id is None:
        return refusal(request, 404, "refusal.no_case")
    return await _page(request, case_id)


@routes.post("/cases/{case_id}/resolve")
@requires(Scope.RESOLVE, page=True)
@browser_only
async def resolve_case(request: web.Request) -> web.Response:
    """The resolve form: ``reset_completed`` or ``dismissed`` (a reason required)."""
    case_id = canonical_uuid(request, "case_id")
    if case_id is None:
        return refusal(request, 404, "refusal.no_case")
    engine, actor = request.app[keys.ENGINE], keys.actor_of(request)

    async def record(form: Mapping[str, str], resolved_by: str) -> bool:
        wanted = CaseResolutionRequest(
            case_id=case_id,
            resolution=form["resolution"],
            resolved_by=resolved_by,
            reason=form["reason"] or None,
        )
        return await resolution.resolve_case(engine, wanted, actor, require_reason=True)

    async def again(form: Mapping[str, str], field: str) -> web.Response:
        return await _page(request, case_id, status=400, form=form, form_error=field)

    return await resolve_from_form(
        request, page=f"/cases/{case_id}", not_found="refusal.no_case", resolve=record, again=again
    )
