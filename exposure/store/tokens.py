"""Named queries over API tokens. Only the argon2 hash of a token's secret is ever stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure import JsonObject
from exposure.store.access_models import ApiToken

api_tokens = cast(Table, ApiToken.__table__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """One stored token; ``secret_hash`` is an argon2 PHC string, kept out of ``repr``."""

    token_id: str
    name: str
    scopes: frozenset[str]
    secret_hash: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def as_json(self) -> JsonObject:
        """What ``exposure tokens list`` shows: everything but the hash."""
        return {
            "token_id": self.token_id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _record(row: Row[Any]) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


async def insert_token(
    conn: AsyncConnection,
    *,
    token_id: str,
    name: str,
    scopes: Sequence[str],
    secret_hash: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(api_tokens).values(
            token_id=token_id,
            name=name,
            scopes=" ".join(sorted(scopes)),
            secret_hash=secret_hash,
            created_at=now,
        )
    )


async def get_token(conn: AsyncConnection, token_id: str) -> TokenRecord | None:
    row = (
        await conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id))
    ).one_or_none()
    return None if row is None else _record(row)


async def list_tokens(conn: AsyncConnection) -> list[TokenRecord]:
    rows = await conn.execute(
        select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.token_id)
    )
    return [_record(row) for row in rows]


async def revoke_token(conn: AsyncConnection, token_id: str, now: datetime) -> bool:
    """Mark a token revoked; False when it does not exist or was revoked already."""
    result = await conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


async def touch_token(conn: AsyncConnection, token_id: str, now: datetime) -> None:
    await conn.execute(
        update(api_tokens).where(api_tokens.c.token_id == token_id).values(last_used_at=now)
    )
