"""One exposure in the console: its masked hints, every sighting, its webhook events and
their delivery attempts, its resolution history; and the two actions on it, resolve (or
dismiss, with a reason) and replay a dead event, both needing the ``resolve`` scope."""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import requires
from exposure.api.params import canonical_uuid
from exposure.api.scopes import Scope
from exposure.console.guard import safe_next, see_other
from exposure.console.render import refusal, render
from exposure.console.resolve_form import resolve_from_form
from exposure.console.routing import browser_only, routes
from exposure.domain.cases import RESET_SLA
from exposure.store import audit as audit_log
from exposure.store import exposure_detail
from exposure.triage import resolution
from exposure.triage.replay import replay_events
from exposure.triage.resolution import RESOLUTIONS, ResolutionRequest

_EVENT_ID = re.compile(r"msg_[A-Za-z0-9_-]{1,60}")
# What a redirect after an action may report (anything else in the query is ignored).
DONE = ("resolved", "unchanged", "replayed")
PROBLEMS = ("not_dead", "already_resolved")


async def _page(
    request: web.Request,
    exposure_id: str,
    *,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    form_error: str | None = None,
) -> web.Response:
    engine = request.app[keys.ENGINE]
    async with engine.connect() as conn:
        exposure = await exposure_detail.get_exposure(conn, exposure_id)
        if exposure is None:
            return refusal(request, 404, "refusal.no_exposure")
        places, place_count = await exposure_detail.sighting_places(conn, exposure_id)
        hints = await exposure_detail.customer_hints(conn, exposure.customer_id)
        events = await exposure_detail.exposure_events(conn, exposure_id)
        history = await audit_log.for_targets(
            conn, [exposure_id, *(event.event_id for event in events)]
        )
    done = request.query.get("done")
    problem = request.query.get("problem")
    return render(
        request,
        "exposure.html.j2",
        nav="worklist",
        status=status,
        e=exposure,
        places=places,
        place_count=place_count,
        hints=hints,
        events=events,
        history=history,
        sla=RESET_SLA,
        resolutions=RESOLUTIONS,
        form=form or {},
        form_error=form_error,
        done=done if done in DONE else None,
        problem=problem if problem in PROBLEMS else None,
    )


@routes.get("/exposures/{exposure_id}")
@requires(Scope.READ, page=True)
@browser_only
async def exposure_page(request: web.Request) -> web.Response:
    exposure_id = canonical_uuid(request, "exposure_id")
    if exposure_id is None:
        return refusal(request, 404, "refusal.no_exposure")
    return await _page(request, exposure_id)


@routes.post("/exposures/{exposure_id}/resolve")
@requires(Scope.RESOLVE, page=True)
@browser_only
async def resolve_exposure(request: web.Request) -> web.Response:
    """The resolve form: ``reset_completed`` or ``dismissed`` (a reason required)."""
    exposure_id = canonical_uuid(request, "exposure_id")
    if exposure_id is None:
        return refusal(request, 404, "refusal.no_exposure")
    engine, actor = request.app[keys.ENGINE], keys.actor_of(request)

    async def record(form: Mapping[str, str], resolved_by: str) -> bool:
        wanted = ResolutionRequest(
            exposure_id=exposure_id,
            resolution=form["resolution"],
            resolved_by=resolved_by,
            reason=form["reason"] or None,
        )
        return await resolution.resolve(engine, wanted, actor, require_reason=True)

    async def again(form: Mapping[str, str], field: str) -> web.Response:
        return await _page(request, exposure_id, status=400, form=form, form_error=field)

    return await resolve_from_form(
        request,
        page=f"/exposures/{exposure_id}",
        not_found="refusal.no_exposure",
        resolve=record,
        again=again,
    )


@routes.post("/events/{event_id}/replay")
@requires(Scope.RESOLVE, page=True)
@browser_only
async def replay_event(request: web.Request) -> web.Response:
    """Replay one dead-lettered event; back to the page the form was on."""
    event_id = request.match_info["event_id"]
    posted = await request.post()
    back = safe_next(str(posted.get("back", "")), default="/health")
    if not _EVENT_ID.fullmatch(event_id):
        return see_other(_with(back, "problem=not_dead"))
    replayed = await replay_events(
        request.app[keys.ENGINE], keys.actor_of(request), event_ids=[event_id], only_dead=True
    )
    return see_other(_with(back, "done=replayed" if replayed else "problem=not_dead"))


def _with(path: str, param: str) -> str:
    base = path.split("?", 1)[0]
    return f"{base}?{param}"
