"""Named queries over console sessions. Only a SHA-256 of a session's secret is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.access_models import ApiToken, ConsoleSession
from exposure.store.tokens import TokenRecord

console_sessions = cast(Table, ConsoleSession.__table__)
api_tokens = cast(Table, ApiToken.__table__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRow:
    """A stored session and the token it was opened with (read together, in one query)."""

    session_hash: bytes
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    token: TokenRecord


async def insert_session(
    conn: AsyncConnection,
    *,
    session_hash: bytes,
    token_id: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(console_sessions).values(
            session_hash=session_hash,
            token_id=token_id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
    )


async def get_session(conn: AsyncConnection, session_hash: bytes) -> SessionRow | None:
    """The session with this hash and its token (revoked or not: the caller decides)."""
    s, t = console_sessions.c, api_tokens.c
    row = (
        await conn.execute(
            select(
                s.session_hash,
                s.created_at.label("session_created_at"),
                s.last_seen_at,
                s.expires_at,
                t.token_id,
                t.name,
                t.scopes,
                t.secret_hash,
                t.created_at.label("token_created_at"),
                t.revoked_at,
                t.last_used_at,
            )
            .join(api_tokens, t.token_id == s.token_id)
            .where(s.session_hash == session_hash)
        )
    ).one_or_none()
    if row is None:
        return None
    return SessionRow(
        session_hash=bytes(row.session_hash),
        created_at=row.session_created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        token=TokenRecord(
            token_id=row.token_id,
            name=row.name,
            scopes=frozenset(row.scopes.split()),
            secret_hash=row.secret_hash,
            created_at=row.token_created_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        ),
    )


async def touch_session(conn: AsyncConnection, session_hash: bytes, now: datetime) -> None:
    await conn.execute(
        update(console_sessions)
        .where(console_sessions.c.session_hash == session_hash)
        .values(last_seen_at=now)
    )


async def delete_session(conn: AsyncConnection, session_hash: bytes) -> bool:
    result = await conn.execute(
        delete(console_sessions).where(console_sessions.c.session_hash == session_hash)
    )
    return bool(result.rowcount)


async def delete_token_sessions(conn: AsyncConnection, token_id: str) -> int:
    """End every session opened with a token (it was revoked)."""
    result = await conn.execute(
        delete(console_sessions).where(console_sessions.c.token_id == token_id)
    )
    return int(result.rowcount)


async def delete_ended(conn: AsyncConnection, *, now: datetime, idle_before: datetime) -> int:
    """Remove sessions past their absolute expiry or idle since before ``idle_before``."""
    result = await conn.execute(
        delete(console_sessions).where(
            or_(
                console_sessions.c.expires_at <= now,
                console_sessions.c.last_seen_at < idle_before,
            )
        )
    )
    return int(result.rowcount)
