"""How console routes are declared: one route table, and a mark for the pages that are for
browsers only (the OpenAPI document describes the machine API; the README describes these)."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from exposure.api import keys
from exposure.api.auth import Handler
from exposure.console.text import ConsoleLocale, choose_language

routes = web.RouteTableDef()

H = TypeVar("H", bound=Handler)
_BROWSER_ONLY = "__exposure_browser_only__"


def browser_only(handler: H) -> H:
    """Mark a handler as a console page that is not part of the documented HTTP API."""
    setattr(handler, _BROWSER_ONLY, True)
    return handler


def is_browser_only(handler: object) -> bool:
    return bool(getattr(handler, _BROWSER_ONLY, False))


def locale_of(request: web.Request) -> ConsoleLocale:
    """The visitor's language (see :func:`~exposure.console.text.choose_language`)."""
    return ConsoleLocale.get(choose_language(request, request.app[keys.SETTINGS]))
