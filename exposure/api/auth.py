"""Bearer API tokens: minting, verification, and what each route requires.

A token reads ``exp_<token_id>_<secret>``: ``token_id`` is 16 hex characters (shown by
``exposure tokens list``, used to revoke), ``secret`` 43 URL-safe base64 characters (256 random
bits). Only an argon2 hash of the secret is stored; the whole token is printed once, at creation.

Verification cost: argon2 is deliberately slow, so a verified token is remembered in memory for
:data:`CACHE_SECONDS`, keyed by a SHA-256 of the presented token (never the token itself). The
cache only skips the argon2 step: every request still reads the token's row by primary key, so a
revocation (made by the CLI in another process, or on another replica) takes effect on the very
next request, and scope changes likewise. ``last_used_at`` is written at most once a minute per
token, so authentication adds no write per request to a busy SQLite database.

Timing: a token whose id is unknown or revoked is verified against a decoy argon2 hash, so it
takes as long to refuse as a wrong secret for a real id; response times do not tell which
token ids exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.api.errors import ApiError
from exposure.api.scopes import Scope
from exposure.clock import utcnow
from exposure.errors import FatalError
from exposure.settings import Settings
from exposure.store import audit as audit_log
from exposure.store import sessions as session_queries
from exposure.store import tokens as token_queries
from exposure.store.audit import Actor, AuditAction
from exposure.store.tokens import TokenRecord

TOKEN_PREFIX = "exp"  # noqa: S105  (a label, not a secret)
_TOKEN = re.compile(r"exp_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
CACHE_SECONDS = 300.0
CACHE_MAX_ENTRIES = 4096
TOUCH_EVERY = timedelta(minutes=1)
MAX_CONCURRENT_VERIFICATIONS = 4
MAX_NAME = 128


class InvalidTokenRequest(FatalError):
    """``exposure tokens create`` was given a bad name or no scope."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"token: {problem}")


@dataclass(frozen=True, slots=True)
class Access:
    """What a route requires: ``scope`` None means no token; ``open_when`` lifts the
    requirement when a setting says so (``/range`` with ``EXPOSURE_RANGE_PUBLIC=true``).
    ``page``: an HTML page for people, where a console session may stand in for the bearer
    token (:mod:`exposure.console.guard`)."""

    scope: Scope | None
    open_when: Callable[[Settings], bool] | None = None
    page: bool = False

    def needs_token(self, settings: Settings) -> bool:
        if self.scope is None:
            return False
        return not (self.open_when is not None and self.open_when(settings))


PUBLIC = Access(None)
_ACCESS_ATTR = "__exposure_access__"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def requires(
    scope: Scope, *, open_when: Callable[[Settings], bool] | None = None, page: bool = False
) -> Callable[[H], H]:
    """Mark a handler as needing a token with ``scope`` (checked by the auth middleware);
    ``page=True`` also accepts a console session (an HTML page people open in a browser)."""

    def mark(handler: H) -> H:
        setattr(handler, _ACCESS_ATTR, Access(scope, open_when, page))
        return handler

    return mark


def public(handler: H) -> H:
    """Mark a handler as open to anyone (health, metrics, the spec)."""
    setattr(handler, _ACCESS_ATTR, PUBLIC)
    return handler


def access_of(handler: object) -> Access | None:
    """The marker set by :func:`requires` / :func:`public`; None for an unmarked handler."""
    access = getattr(handler, _ACCESS_ATTR, None)
    return access if isinstance(access, Access) else None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    record: TokenRecord


def _hasher() -> PasswordHasher:
    # argon2id at OWASP's minimum (19 MiB, 2 passes): the secret is 256 random bits, so a
    # costlier hash buys nothing, while every verification of a bad token costs the server.
    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


async def issue_token(
    engine: AsyncEngine, name: str, scopes: Iterable[Scope | str], *, actor: Actor
) -> IssuedToken:
    """Create a token; the returned plaintext is the only copy that will ever exist. The
    audit entry (name and scopes, never the secret) commits with it."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidTokenRequest(f"the name must be 1 to {MAX_NAME} printable characters")
    try:
        wanted = sorted({Scope(scope) for scope in scopes})
    except ValueError:
        raise InvalidTokenRequest(
            f"unknown scope; choose from {', '.join(s.value for s in Scope)}"
        ) from None
    if not wanted:
        raise InvalidTokenRequest("give at least one --scope")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    secret_hash = await asyncio.to_thread(_hasher().hash, secret)
    now = utcnow()
    async with engine.begin() as conn:
        await token_queries.insert_token(
            conn,
            token_id=token_id,
            name=name,
            scopes=[s.value for s in wanted],
            secret_hash=secret_hash,
            now=now,
        )
        await audit_log.record(
            conn,
            actor,
            AuditAction.TOKEN_CREATED,
            target=token_id,
            detail={"name": name, "scopes": [s.value for s in wanted]},
            at=now,
        )
        record = await token_queries.get_token(conn, token_id)
    assert record is not None  # noqa: S101  (just inserted in this transaction)
    return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", record)


async def revoke_token(engine: AsyncEngine, token_id: str, *, actor: Actor) -> bool | None:
    """Revoke a token and end its console sessions: True if revoked now, False if it already
    was, None if unknown."""
    now = utcnow()
    async with engine.begin() as conn:
        if await token_queries.revoke_token(conn, token_id, now):
            ended = await session_queries.delete_token_sessions(conn, token_id)
            await audit_log.record(
                conn,
                actor,
                AuditAction.TOKEN_REVOKED,
                target=token_id,
                detail={"sessions_ended": ended},
                at=now,
            )
            return True
        return None if await token_queries.get_token(conn, token_id) is None else False


def unauthorized(message: str, *, presented: bool) -> ApiError:
    challenge = 'Bearer realm="exposure"'
    if presented:
        challenge += ', error="invalid_token"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def forbidden(scope: Scope) -> ApiError:
    return ApiError(
        403,
        "insufficient_scope",
        f"this token lacks the {scope.value!r} scope this operation needs",
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="exposure", error="insufficient_scope", scope="{scope.value}"'
            )
        },
    )


class TokenAuthenticator:
    """Checks bearer tokens against the database, with the short argon2 cache described above."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._hasher = _hasher()
        # sha256(token) -> (token_id, the secret_hash it verified against, expiry on the
        # monotonic clock). Tying the entry to the hash means a re-keyed row is re-verified.
        self._verified: dict[bytes, tuple[str, str, float]] = {}
        # Bounds the CPU and memory a flood of wrong secrets for a real token id can take.
        self._verifying = asyncio.Semaphore(MAX_CONCURRENT_VERIFICATIONS)
        self._decoy_hash: str | None = None

    async def authenticate(self, header: str | None) -> TokenRecord:
        """The token record for an ``Authorization`` header value, or a 401 :class:`ApiError`."""
        if header is None:
            raise unauthorized(
                "this operation needs an API token: Authorization: Bearer ...", presented=False
            )
        scheme, _, presented = header.strip().partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise unauthorized(
                "use the Bearer scheme: Authorization: Bearer exp_...", presented=True
            )
        match = _TOKEN.fullmatch(presented)
        if match is None:
            raise unauthorized("the API token is malformed", presented=True)
        token_id, secret = match.groups()
        async with self._engine.connect() as conn:
            record = await token_queries.get_token(conn, token_id)
        usable = record is not None and record.revoked_at is None
        key = hashlib.sha256(presented.encode()).digest()
        if record is not None and usable and self._cached(key, record):
            await self._touch(record)
            return record
        # An unknown or revoked id is checked against a decoy hash with the same argon2
        # parameters, so it costs what a wrong secret for a real id costs: response times do
        # not tell which token ids exist.
        secret_hash = record.secret_hash if record is not None and usable else await self._decoy()
        async with self._verifying:
            verified = await asyncio.to_thread(self._verify, secret_hash, secret)
        if record is None or not usable or not verified:
            # Same answer for unknown, revoked and wrong: the message says what to do anyway.
            raise unauthorized("the API token is unknown or revoked", presented=True)
        self._remember(key, record)
        await self._touch(record)
        return record

    async def _decoy(self) -> str:
        """A hash of a random secret nobody holds, made once per process (the first unknown id
        pays for making it; its hashing parameters are those of every token)."""
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(32))
        return self._decoy_hash

    def authorize(self, record: TokenRecord, scope: Scope | None) -> None:
        """Raise 403 when the token lacks ``scope`` (None: any valid token will do)."""
        if scope is not None and scope.value not in record.scopes:
            raise forbidden(scope)

    def _cached(self, key: bytes, record: TokenRecord) -> bool:
        entry = self._verified.get(key)
        if entry is None:
            return False
        token_id, secret_hash, expires = entry
        if expires < time.monotonic() or (token_id, secret_hash) != (
            record.token_id,
            record.secret_hash,
        ):
            del self._verified[key]
            return False
        return True

    def _remember(self, key: bytes, record: TokenRecord) -> None:
        if len(self._verified) >= CACHE_MAX_ENTRIES:
            now = time.monotonic()
            self._verified = {k: v for k, v in self._verified.items() if v[2] >= now}
            if len(self._verified) >= CACHE_MAX_ENTRIES:
                self._verified.clear()
        self._verified[key] = (
            record.token_id,
            record.secret_hash,
            time.monotonic() + CACHE_SECONDS,
        )

    def _verify(self, secret_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return False

    async def _touch(self, record: TokenRecord) -> None:
        now = utcnow()
        if record.last_used_at is not None and now - record.last_used_at < TOUCH_EVERY:
            return
        async with self._engine.begin() as conn:
            await token_queries.touch_token(conn, record.token_id, now)
