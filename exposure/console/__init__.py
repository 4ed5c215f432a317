"""The console: the HTML pages people use in a browser, served by the same app as the API.

Pages: sign-in (with an API token), dashboard, worklist (one row per case), case detail
(resolve or dismiss the case), exposure detail (resolve, dismiss, replay a dead event),
reports, health and the audit log, in Japanese and English, rendered on the server and usable
without JavaScript. Modules, one job each: :mod:`.sessions` (cookies and session rows),
:mod:`.csrf` (form tokens), :mod:`.guard` (a session standing in for a bearer token on pages),
:mod:`.render` and :mod:`.text` (templates and languages), :mod:`.filters` (filter forms), and
the pages: :mod:`.pages`, :mod:`.case_page`, :mod:`.exposure_page`, :mod:`.audit_pages`,
:mod:`.signin`. Their queries live in :mod:`exposure.store`.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import public
from exposure.console import audit_pages, case_page, csrf, exposure_page, pages, signin
from exposure.console.guard import SESSIONS, sessions_for_pages
from exposure.console.render import CSRF_KEY
from exposure.console.routing import browser_only, is_browser_only, routes
from exposure.console.sessions import SessionManager
from exposure.settings import Settings

__all__ = ["install", "is_browser_only", "sessions_for_pages"]

# Imported for their routes (each module adds its handlers to the shared table).
_PAGE_MODULES = (pages, case_page, exposure_page, audit_pages, signin)
STYLESHEET = "/static/console.css"


@routes.get(STYLESHEET)
@public
@browser_only
async def stylesheet(request: web.Request) -> web.Response:
    css = resources.files("exposure.console").joinpath("static", "console.css").read_bytes()
    return web.Response(
        body=css,
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "max-age=3600"},
    )


def install(app: web.Application, settings: Settings, engine: AsyncEngine) -> None:
    """Add the console's routes and what they share to ``app`` (the app's middlewares must
    include :func:`sessions_for_pages` before authentication)."""
    app[SESSIONS] = SessionManager(engine, settings)
    app[CSRF_KEY] = csrf.key(settings)
    app.router.add_routes(routes)
