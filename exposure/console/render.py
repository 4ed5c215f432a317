"""Rendering console pages: one Jinja2 environment (autoescaping on, undefined names fail),
and what every page's layout needs (language, user, CSRF token, navigation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined

from exposure.api import keys
from exposure.clock import utcnow
from exposure.console import csrf
from exposure.console.text import ConsoleLocale, choose_language

NAVIGATION = ("dashboard", "worklist", "reports", "health", "audit")
CSRF_KEY = web.AppKey("exposure.console.csrf_key", bytes)
# The pre-session cookie a sign-in page set on this response (read by the same request's form).
PRESESSION = web.RequestKey("exposure.console.presession", str)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("exposure.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["navigation"] = NAVIGATION
    env.globals["audit_details"] = audit_details
    return env


# How an audit entry's details read: the resolution first, then who and why, then the rest.
DETAIL_ORDER = ("resolution", "reason", "resolved_by", "resolved_at", "name", "scopes")


def audit_details(
    loc: ConsoleLocale, tz: ZoneInfo, detail: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """An audit entry's details as (label, text) pairs in reading order, in ``loc``'s
    language: states by their label, times in the console's zone, lists joined."""
    keys = [k for k in DETAIL_ORDER if k in detail]
    keys += sorted(k for k in detail if k not in DETAIL_ORDER)
    pairs = []
    for key in keys:
        value = detail[key]
        if key == "resolution":
            text = loc.label("state", str(value))
        elif key.endswith("_at") and isinstance(value, str):
            try:
                text = loc.datetime(datetime.fromisoformat(value), tz)
            except ValueError:
                text = value
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        pairs.append((loc.label("detail", key), text))
    return pairs


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """What the shared layout shows: language, who is signed in, the CSRF token of forms."""

    loc: ConsoleLocale
    tz: ZoneInfo
    now: datetime
    path: str
    nav: str
    user: str | None
    token_id: str | None
    scopes: frozenset[str]
    csrf_token: str | None
    signed_in: bool

    def can(self, scope: str) -> bool:
        return scope in self.scopes


def form_binding(request: web.Request) -> str | None:
    """What this request's forms are bound to: its session, or before sign-in its
    pre-session cookie (see :mod:`exposure.console.csrf`)."""
    if keys.SESSION in request:
        return request[keys.SESSION].session_hash.hex()
    presession = request.get(PRESESSION)
    return presession if isinstance(presession, str) else None


def layout(request: web.Request, nav: str) -> Layout:
    settings = request.app[keys.SETTINGS]
    token = request.get(keys.TOKEN)
    binding = form_binding(request)
    return Layout(
        loc=ConsoleLocale.get(choose_language(request, settings)),
        tz=settings.timezone,
        now=utcnow(),
        path=request.path_qs,
        nav=nav,
        user=token.name if token is not None else None,
        token_id=token.token_id if token is not None else None,
        scopes=token.scopes if token is not None else frozenset(),
        csrf_token=None if binding is None else csrf.token_for(request.app[CSRF_KEY], binding),
        signed_in=keys.SESSION in request,
    )


def render(
    request: web.Request,
    template: str,
    *,
    nav: str = "",
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> web.Response:
    """A page of the console in the visitor's language."""
    page = layout(request, nav)
    html = environment().get_template(template).render(page=page, loc=page.loc, **values)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=headers
    )


def refusal(request: web.Request, status: int, message_key: str, **values: Any) -> web.Response:
    """An error page: what went wrong and what to do, in the visitor's language."""
    return render(request, "refusal.html.j2", status=status, message_key=message_key, **values)


def query_with(request: web.Request, **changes: str | int | None) -> str:
    """This page's query string with some parameters changed (None removes one)."""
    params = {k: v for k, v in request.query.items()}
    for name, value in changes.items():
        if value is None or value == "":
            params.pop(name, None)
        else:
            params[name] = str(value)
    return "?" + urlencode(params) if params else "?"
