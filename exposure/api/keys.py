"""Typed keys through which handlers reach the process's shared resources.

One engine and one settings object per process (docs/architecture.md, "Resources"); the app
holds references, the runtime that opened them closes them.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import TokenAuthenticator
from exposure.settings import Settings
from exposure.store.tokens import TokenRecord

SETTINGS = web.AppKey("exposure.settings", Settings)
ENGINE = web.AppKey("exposure.engine", AsyncEngine)
AUTHENTICATOR = web.AppKey("exposure.authenticator", TokenAuthenticator)
# The token that authenticated this request (absent on open routes).
TOKEN = web.RequestKey("exposure.token", TokenRecord)
