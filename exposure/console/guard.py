"""The middleware that lets a console session stand in for a bearer token on pages.

For a route marked as a page (``requires(..., page=True)``) and a request without an
``Authorization`` header, it loads the session from the cookie. No live session: a browser
asking for HTML is sent to sign in (a script keeps getting the API's JSON 401). A form posted
with a session must carry its CSRF token and come from this origin; a session whose token
lacks the route's scope gets a 403 page. Otherwise the session's token authenticates the
request, exactly as a bearer token would (the authentication middleware then lets it pass).
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import Handler, access_of, unauthorized
from exposure.console import csrf
from exposure.console.render import CSRF_KEY, refusal
from exposure.console.sessions import (
    SESSION_COOKIE,
    SessionManager,
    clear_cookie,
    cookie_value,
    is_secure,
)

SESSIONS = web.AppKey("exposure.console.sessions", SessionManager)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN = "/signin"
MAX_NEXT = 2000


def safe_next(target: str | None, default: str = "/dashboard") -> str:
    """A same-site path to return to after sign-in; anything else becomes ``default`` (no
    open redirect: no scheme, no host, no ``//`` or backslash tricks)."""
    if (
        not target
        or len(target) > MAX_NEXT
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 0x20 for ch in target)
    ):
        return default
    return target


def see_other(location: str) -> web.Response:
    """303: after a form, or to send a browser elsewhere (the next request is a GET)."""
    return web.Response(status=303, headers={"Location": location})


def wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def sign_in_redirect(request: web.Request, *, ended: bool) -> web.StreamResponse:
    """Where an unauthenticated visit goes: a browser to the sign-in page (the page it asked
    for kept as ``next``); anything else gets the API's 401."""
    if not wants_html(request):
        raise unauthorized(
            "this page needs a console session or an API token: Authorization: Bearer ...",
            presented=False,
        )
    query = {"next": request.path_qs if request.method in SAFE_METHODS else "/dashboard"}
    if ended:
        query["ended"] = "1"
    response = see_other(f"{SIGN_IN}?{urlencode(query)}")
    if ended:
        clear_cookie(
            response, SESSION_COOKIE, secure=is_secure(request, request.app[keys.SETTINGS])
        )
    return response


@web.middleware
async def sessions_for_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    match_info = request.match_info
    if match_info.http_exception is not None:
        return await handler(request)
    access = access_of(match_info.route.handler)
    if access is None or not access.page or "Authorization" in request.headers:
        return await handler(request)
    settings = request.app[keys.SETTINGS]
    secret = cookie_value(request, SESSION_COOKIE, secure=is_secure(request, settings))
    session = await request.app[SESSIONS].load(secret) if secret else None
    if session is None:
        return sign_in_redirect(request, ended=secret is not None)
    request[keys.SESSION] = session
    request[keys.TOKEN] = session.token
    if request.method not in SAFE_METHODS:
        presented = await csrf.presented_token(request)
        if not csrf.same_origin(request, settings) or not csrf.valid(
            request.app[CSRF_KEY], session.session_hash.hex(), presented
        ):
            return refusal(request, 403, "refusal.csrf")
    if access.scope is not None and access.scope.value not in session.token.scopes:
        return refusal(request, 403, "refusal.scope", scope=access.scope.value)
    return await handler(request)
