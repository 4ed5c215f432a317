"""Access tables: API tokens, console sessions and the audit log (who may do what, and what
they did). Part of the one schema on :data:`exposure.store.models.Base`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exposure.store.models import Base
from exposure.store.types import UTCDateTime


class ApiToken(Base):
    """A bearer token for the HTTP API: shown once, stored as an argon2 hash, revocable."""

    __tablename__ = "api_tokens"

    token_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(256))  # space-separated
    secret_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A person signed in to the console with an API token.

    The cookie carries a random 256-bit secret; only its SHA-256 is stored, so a copy of the
    database cannot be replayed as a session. A session ends at ``expires_at`` (absolute), when
    it has been idle longer than the console's idle limit (``last_seen_at``), when its person
    signs out (the row is deleted) or when its token is revoked (checked on every request).
    """

    __tablename__ = "console_sessions"
    __table_args__ = (Index(None, "token_id"), Index(None, "expires_at"))

    session_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.token_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One change made by a person or a script: who, what, when (append-only).

    ``channel`` says where it came from (console, api, cli); ``actor`` names who (the API
    token's name for the console and the API, the operating-system user for the CLI) and
    ``actor_token_id`` the token, when there is one. ``target`` is what changed (an exposure
    id, an event id, a token id, a keyed customer reference; empty when nothing single) and
    ``detail`` a JSON object of the change's facts. Nothing here is a plaintext identifier,
    and a deleted customer appears only as a keyed reference.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint("channel IN ('console', 'api', 'cli')", name="channel"),
        Index(None, "at"),
        Index(None, "target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(160))
    actor_token_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str] = mapped_column(String(160))
    detail: Mapped[str] = mapped_column(Text)  # JSON object
