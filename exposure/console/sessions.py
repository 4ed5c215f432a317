"""Console sessions: opened by signing in with an API token, carried by a cookie.

The cookie holds 256 random bits; the database keeps only their SHA-256 (a stolen copy of the
database opens no session). Cookie attributes: ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (another site's forms and requests do not carry it; a link followed from
elsewhere still opens the page), ``Path=/``, and over TLS ``Secure`` with the ``__Host-``
name prefix (no subdomain can set or shadow it). A session ends after
``EXPOSURE_CONSOLE_IDLE_MINUTES`` without a request, ``EXPOSURE_CONSOLE_SESSION_HOURS`` after
sign-in however active, when its person signs out, or when its token is revoked: every request
reads the session row together with its token, so a revocation made anywhere applies at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.settings import Settings
from exposure.store import sessions as queries
from exposure.store.sessions import SessionRow
from exposure.store.tokens import TokenRecord

SESSION_COOKIE = "exposure_session"
# Before sign-in: binds the sign-in form's CSRF token to this browser.
PRESESSION_COOKIE = "exposure_presession"
SECURE_PREFIX = "__Host-"
# last_seen_at is written at most this often per session (idle expiry is this coarse).
TOUCH_EVERY = timedelta(minutes=1)
MAX_COOKIE_CHARS = 64  # token_urlsafe(32) is 43 characters


def is_secure(request: web.Request, settings: Settings) -> bool:
    """Whether browsers reach the console over TLS: the connection itself, or the configured
    ``EXPOSURE_CONSOLE_URL`` (a TLS proxy in front)."""
    configured = settings.console_url
    return request.secure or (configured is not None and configured.startswith("https://"))


def cookie_name(base: str, secure: bool) -> str:
    return SECURE_PREFIX + base if secure else base


def set_cookie(
    response: web.StreamResponse, base: str, value: str, *, secure: bool, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(base, secure),
        value,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: web.StreamResponse, base: str, *, secure: bool) -> None:
    response.del_cookie(
        cookie_name(base, secure), path="/", secure=secure, httponly=True, samesite="Lax"
    )


def cookie_value(request: web.Request, base: str, *, secure: bool) -> str | None:
    value = request.cookies.get(cookie_name(base, secure))
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    return value


def session_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class SessionManager:
    """Opens, loads and ends sessions; one per app."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self.settings = settings
        self.idle = timedelta(minutes=settings.console_idle_minutes)
        self.lifetime = timedelta(hours=settings.console_session_hours)

    async def open(self, token: TokenRecord, *, now: datetime | None = None) -> str:
        """Open a session for ``token``; return the cookie's secret (never stored). Sessions
        that ended meanwhile are swept here, so the table stays small."""
        now = now or utcnow()
        secret = secrets.token_urlsafe(32)
        async with self._engine.begin() as conn:
            await queries.delete_ended(conn, now=now, idle_before=now - self.idle)
            await queries.insert_session(
                conn,
                session_hash=session_hash(secret),
                token_id=token.token_id,
                now=now,
                expires_at=now + self.lifetime,
            )
        return secret

    async def load(self, secret: str, *, now: datetime | None = None) -> SessionRow | None:
        """The live session behind a cookie's secret, or None (an ended one is deleted)."""
        now = now or utcnow()
        digest = session_hash(secret)
        async with self._engine.connect() as conn:
            row = await queries.get_session(conn, digest)
        if row is None:
            return None
        if (
            row.token.revoked_at is not None
            or row.expires_at <= now
            or row.last_seen_at + self.idle <= now
        ):
            await self.close(digest)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            async with self._engine.begin() as conn:
                await queries.touch_session(conn, digest, now)
        return row

    async def close(self, digest: bytes) -> bool:
        async with self._engine.begin() as conn:
            return await queries.delete_session(conn, digest)

    @property
    def max_age(self) -> int:
        """The cookie's lifetime in seconds: the session's absolute lifetime."""
        return int(self.lifetime.total_seconds())
