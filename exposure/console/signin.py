"""Signing in with an API token, signing out, and choosing the console's language.

Sign-in takes a token (the same ``exp_...`` scripts send as a bearer token) and checks it
exactly as the API does (argon2, revocation, timing); a token needs the ``read`` scope to open
the console. Its form, like every form, carries a CSRF token: before sign-in it is bound to a
pre-session cookie, which is dropped once the session starts (a new session id at every
sign-in, so a session id planted before sign-in is worthless).
"""

from __future__ import annotations

import secrets

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import public, requires
from exposure.api.errors import ApiError
from exposure.api.scopes import Scope
from exposure.console import csrf
from exposure.console.guard import SESSIONS, safe_next, see_other
from exposure.console.render import CSRF_KEY, PRESESSION, form_binding, refusal, render
from exposure.console.routing import browser_only, routes
from exposure.console.sessions import (
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    cookie_value,
    is_secure,
    set_cookie,
)
from exposure.console.text import LANGUAGE_COOKIE
from exposure.report.i18n import LANGUAGES
from exposure.store import audit as audit_log
from exposure.store.audit import Actor, AuditAction, Channel

LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
MAX_TOKEN_CHARS = 200


async def _current_session(request: web.Request) -> bool:
    """Whether the visitor already has a live session (then sign-in is skipped)."""
    settings = request.app[keys.SETTINGS]
    secret = cookie_value(request, SESSION_COOKIE, secure=is_secure(request, settings))
    if secret is None:
        return False
    session = await request.app[SESSIONS].load(secret)
    if session is None:
        return False
    request[keys.SESSION] = session
    request[keys.TOKEN] = session.token
    return True


def _sign_in_form(
    request: web.Request, *, status: int = 200, error: str | None = None
) -> web.Response:
    """The sign-in page, with a pre-session cookie for its form when there is none yet."""
    settings = request.app[keys.SETTINGS]
    secure = is_secure(request, settings)
    presession = cookie_value(request, PRESESSION_COOKIE, secure=secure)
    fresh = presession is None
    if presession is None:
        presession = secrets.token_urlsafe(32)
    request[PRESESSION] = presession
    response = render(
        request,
        "signin.html.j2",
        nav="signin",
        status=status,
        error=error,
        next_path=safe_next(request.query.get("next")),
        ended=request.query.get("ended") == "1",
        signed_out=request.query.get("signed_out") == "1",
    )
    if fresh:
        set_cookie(response, PRESESSION_COOKIE, presession, secure=secure, max_age=None)
    return response


@routes.get("/signin")
@public
@browser_only
async def sign_in_page(request: web.Request) -> web.Response:
    if await _current_session(request):
        return see_other(safe_next(request.query.get("next")))
    return _sign_in_form(request)


@routes.post("/signin")
@public
@browser_only
async def sign_in(request: web.Request) -> web.Response:
    settings = request.app[keys.SETTINGS]
    secure = is_secure(request, settings)
    presession = cookie_value(request, PRESESSION_COOKIE, secure=secure)
    posted = await request.post()
    if not csrf.same_origin(request, settings) or not csrf.valid(
        request.app[CSRF_KEY], presession, str(posted.get(csrf.FIELD, ""))
    ):
        return refusal(request, 403, "refusal.csrf")
    presented = str(posted.get("token", "")).strip()[:MAX_TOKEN_CHARS]
    target = safe_next(str(posted.get("next", "")))
    try:
        token = await request.app[keys.AUTHENTICATOR].authenticate(f"Bearer {presented}")
    except ApiError:
        return _sign_in_form(request, status=401, error="signin.error.token")
    if Scope.READ.value not in token.scopes:
        return _sign_in_form(request, status=403, error="signin.error.scope")
    secret = await request.app[SESSIONS].open(token)
    async with request.app[keys.ENGINE].begin() as conn:
        await audit_log.record(
            conn,
            Actor.token(Channel.CONSOLE, token.name, token.token_id),
            AuditAction.SIGNED_IN,
            target=token.token_id,
        )
    response = see_other(target)
    set_cookie(
        response, SESSION_COOKIE, secret, secure=secure, max_age=request.app[SESSIONS].max_age
    )
    clear_cookie(response, PRESESSION_COOKIE, secure=secure)
    return response


@routes.post("/signout")
@requires(Scope.READ, page=True)
@browser_only
async def sign_out(request: web.Request) -> web.Response:
    session = request[keys.SESSION] if keys.SESSION in request else None
    if session is not None:
        await request.app[SESSIONS].close(session.session_hash)
        async with request.app[keys.ENGINE].begin() as conn:
            await audit_log.record(
                conn,
                keys.actor_of(request),
                AuditAction.SIGNED_OUT,
                target=session.token.token_id,
            )
    response = see_other("/signin?signed_out=1")
    clear_cookie(response, SESSION_COOKIE, secure=is_secure(request, request.app[keys.SETTINGS]))
    return response


@routes.post("/language")
@public
@browser_only
async def choose_language(request: web.Request) -> web.Response:
    """Switch the console's language (a cookie); back to the page the switch was on. The
    form is bound to the session, or before sign-in to the pre-session cookie."""
    settings = request.app[keys.SETTINGS]
    secure = is_secure(request, settings)
    if not await _current_session(request):
        presession = cookie_value(request, PRESESSION_COOKIE, secure=secure)
        if presession is not None:
            request[PRESESSION] = presession
    posted = await request.post()
    if not csrf.same_origin(request, settings) or not csrf.valid(
        request.app[CSRF_KEY], form_binding(request), str(posted.get(csrf.FIELD, ""))
    ):
        return refusal(request, 403, "refusal.csrf")
    lang = str(posted.get("lang", ""))
    response = see_other(safe_next(str(posted.get("next", ""))))
    if lang in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            lang,
            max_age=LANGUAGE_COOKIE_SECONDS,
            path="/",
            secure=secure,
            httponly=True,
            samesite="Lax",
        )
    return response
