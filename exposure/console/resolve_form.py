"""The resolve form of the case and the exposure pages: read what was posted, resolve through
the triage service as the signed-in person, and answer as a form should: a redirect to the page
saying what happened, or the page again naming the field to fix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from exposure.api import keys
from exposure.console.guard import see_other
from exposure.console.render import refusal
from exposure.triage import resolution

FIELDS = ("resolution", "reason")


async def resolve_from_form(
    request: web.Request,
    *,
    page: str,
    not_found: str,
    resolve: Callable[[Mapping[str, str], str], Awaitable[bool]],
    again: Callable[[Mapping[str, str], str], Awaitable[web.Response]],
) -> web.Response:
    """``resolve(form, resolved_by)`` records the resolution (True: this call did);
    ``again(form, field)`` renders the page with the problem; ``page`` is its path and
    ``not_found`` the refusal's text key."""
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in FIELDS}
    resolved_by = f"console:{request[keys.TOKEN].name}"[: resolution.MAX_RESOLVED_BY]
    try:
        changed = await resolve(form, resolved_by)
    except (resolution.CaseNotFound, resolution.ExposureNotFound):
        return refusal(request, 404, not_found)
    except resolution.AlreadyResolved:
        return see_other(f"{page}?problem=already_resolved")
    except resolution.InvalidResolution as invalid:
        return await again(form, invalid.field)
    return see_other(f"{page}?done={'resolved' if changed else 'unchanged'}")
