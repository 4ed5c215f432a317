"""The aiohttp application factory.

``create_app`` wires the routes and middlewares over resources the caller owns: the runtime
(``exposure api`` or the daemon) opens the engine, builds the app, serves it, and closes the
engine afterwards. The daemon adds its own routes with :func:`add_routes` and its own cleanup
with ``app.on_cleanup`` before the app starts.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure import console
from exposure.api import (
    audit,
    cases,
    customers,
    exposures,
    health,
    keys,
    middleware,
    openapi,
    password_range,
    reports,
)
from exposure.api.auth import TokenAuthenticator
from exposure.settings import Settings

ROUTE_MODULES = (
    health,
    openapi,
    customers,
    exposures,
    cases,
    audit,
    password_range,
    reports,
)


def create_app(settings: Settings, engine: AsyncEngine) -> web.Application:
    """The HTTP API over ``engine`` (see ``/openapi.json``) and the console's pages."""
    app = web.Application(
        middlewares=[
            middleware.errors,
            middleware.body_limit,
            console.sessions_for_pages,
            middleware.authentication,
        ],
        client_max_size=settings.api_max_body_bytes,
    )
    app[keys.SETTINGS] = settings
    app[keys.ENGINE] = engine
    app[keys.AUTHENTICATOR] = TokenAuthenticator(engine)
    for module in ROUTE_MODULES:
        app.router.add_routes(module.routes)
    console.install(app, settings, engine)
    app.on_response_prepare.append(middleware.security_headers)
    app.cleanup_ctx.append(password_range.keep_corpus_compact)
    return app


def add_routes(app: web.Application, routes: Iterable[web.AbstractRouteDef]) -> None:
    """Add routes (e.g. the daemon's). Mark each handler with
    :func:`~exposure.api.auth.requires` or :func:`~exposure.api.auth.public`; an unmarked
    handler needs a valid token of any scope."""
    app.router.add_routes(routes)
