"""Typed keys through which handlers reach the process's shared resources.

One engine and one settings object per process (docs/architecture.md, "Resources"); the app
holds references, the runtime that opened them closes them.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.auth import TokenAuthenticator
from exposure.settings import Settings
from exposure.store.audit import Actor, Channel
from exposure.store.sessions import SessionRow
from exposure.store.tokens import TokenRecord

SETTINGS = web.AppKey("exposure.settings", Settings)
ENGINE = web.AppKey("exposure.engine", AsyncEngine)
AUTHENTICATOR = web.AppKey("exposure.authenticator", TokenAuthenticator)
# The token that authenticated this request (absent on open routes).
TOKEN = web.RequestKey("exposure.token", TokenRecord)
# The console session that authenticated this request (absent for bearer tokens).
SESSION = web.RequestKey("exposure.session", SessionRow)


def actor_of(request: web.Request) -> Actor:
    """Who is making this (authenticated) request, for the audit log: the token's holder,
    in the console when a session cookie carried the request, on the API otherwise."""
    token = request[TOKEN]
    channel = Channel.CONSOLE if SESSION in request else Channel.API
    return Actor.token(channel, token.name, token.token_id)
