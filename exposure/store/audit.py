"""The audit log: who changed what, and when, through the console, the API or the CLI.

Entries are written in the same transaction as the change they record (a resolution that
rolls back leaves no entry), and never updated or deleted: this module has no query that does.
An entry names its target by id (exposure, webhook event, token) and never carries a
plaintext identifier; a deleted customer is named only by a keyed reference
(:func:`exposure.customers.service.customer_reference`).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Select, Table, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.clock import utcnow
from exposure.store.access_models import AuditEntry

audit_log = cast(Table, AuditEntry.__table__)

MAX_ACTOR = 160
MAX_TARGET = 160
# The columns of an export (CSV), in order; JSON exports use the same names.
EXPORT_COLUMNS = ("id", "at", "channel", "actor", "actor_token_id", "action", "target", "detail")


class Channel(StrEnum):
    """Where a change came from."""

    CONSOLE = "console"
    API = "api"
    CLI = "cli"


class AuditAction(StrEnum):
    """What changed. New kinds of change get a name here (and a label in each console locale)."""

    RESOLVED = "exposure.resolved"
    CASE_RESOLVED = "case.resolved"
    EVENT_REPLAYED = "event.replayed"
    ENDPOINT_ENABLED = "endpoint.enabled"
    TOKEN_CREATED = "token.created"  # noqa: S105  (an action name, not a secret)
    TOKEN_REVOKED = "token.revoked"  # noqa: S105
    CUSTOMERS_ENROLLED = "customers.enrolled"
    CUSTOMER_DELETED = "customer.deleted"
    SIGNED_IN = "session.signed_in"
    SIGNED_OUT = "session.signed_out"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who is making a change: a token's holder (console or API) or a local user (CLI)."""

    channel: Channel
    name: str
    token_id: str | None = None

    @classmethod
    def token(cls, channel: Channel, name: str, token_id: str) -> Actor:
        """The holder of an API token, signed in to the console or calling the API."""
        return cls(channel=channel, name=name, token_id=token_id)

    @classmethod
    def cli(cls, user: str | None = None) -> Actor:
        """Whoever runs the ``exposure`` command: the operating-system user name."""
        if user is None:
            try:
                user = getpass.getuser()
            except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
                user = "unknown"
        return cls(channel=Channel.CLI, name=user)

    @property
    def label(self) -> str:
        """``reset-service (token 0123abcd...)`` / ``root``: how entries and resolutions name it."""
        return self.name if self.token_id is None else f"{self.name} ({self.token_id})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One stored entry; ``detail`` is the change's facts as a read-only mapping."""

    id: int
    at: datetime
    channel: str
    actor: str
    actor_token_id: str | None
    action: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The export shape (API, CSV, CLI): ISO 8601 UTC time, detail as an object."""
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "channel": self.channel,
            "actor": self.actor,
            "actor_token_id": self.actor_token_id,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
        }

    def export_row(self) -> list[str]:
        """The CSV cells, in :data:`EXPORT_COLUMNS` order (``detail`` as JSON)."""
        item = self.as_json()
        item["detail"] = json.dumps(item["detail"], ensure_ascii=False, sort_keys=True)
        return ["" if item[name] is None else str(item[name]) for name in EXPORT_COLUMNS]


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    """Which entries to list; ``since``/``until`` bound ``at`` (half-open, aware UTC)."""

    action: str | None = None
    channel: str | None = None
    actor: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: AuditAction,
    *,
    target: str = "",
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one entry, in the caller's transaction (the change and its entry commit together)."""
    await conn.execute(
        insert(audit_log).values(
            at=at or utcnow(),
            channel=actor.channel.value,
            actor=actor.name[:MAX_ACTOR],
            actor_token_id=actor.token_id,
            action=action.value,
            target=target[:MAX_TARGET],
            detail=json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True),
        )
    )


def _where(query: Select[Any], where: AuditFilter) -> Select[Any]:
    c = audit_log.c
    if where.action is not None:
        query = query.where(c.action == where.action)
    if where.channel is not None:
        query = query.where(c.channel == where.channel)
    if where.actor is not None:
        query = query.where(or_(c.actor == where.actor, c.actor_token_id == where.actor))
    if where.target is not None:
        query = query.where(c.target == where.target)
    if where.since is not None:
        query = query.where(c.at >= where.since)
    if where.until is not None:
        query = query.where(c.at < where.until)
    return query


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        channel=row.channel,
        actor=row.actor,
        actor_token_id=row.actor_token_id,
        action=row.action,
        target=row.target,
        detail=json.loads(row.detail or "{}"),
    )


async def newest_first(
    conn: AsyncConnection, where: AuditFilter, *, offset: int, limit: int
) -> tuple[list[AuditRecord], int]:
    """One page of entries, newest first, and how many match in all (the console's pages)."""
    total = (
        await conn.execute(_where(select(func.count()).select_from(audit_log), where))
    ).scalar_one()
    rows = await conn.execute(
        _where(select(audit_log), where)
        .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [_record(row) for row in rows], int(total)


async def oldest_first(
    conn: AsyncConnection, where: AuditFilter, *, after_id: int = 0, limit: int | None = None
) -> AsyncIterator[AuditRecord]:
    """Entries in the order they were written (by id), after ``after_id``: exports and the
    API's keyset pages. Ids only grow, so a page boundary never skips or repeats an entry."""
    query = _where(select(audit_log), where).where(audit_log.c.id > after_id)
    query = query.order_by(audit_log.c.id)
    if limit is not None:
        query = query.limit(limit)
    result = await conn.stream(query)
    async for row in result:
        yield _record(row)


async def for_targets(conn: AsyncConnection, targets: list[str]) -> list[AuditRecord]:
    """Every entry about any of ``targets`` (an exposure and its events), oldest first."""
    if not targets:
        return []
    rows = await conn.execute(
        select(audit_log)
        .where(audit_log.c.target.in_(targets))
        .order_by(audit_log.c.at, audit_log.c.id)
    )
    return [_record(row) for row in rows]


async def distinct_values(conn: AsyncConnection) -> tuple[list[str], list[str]]:
    """The actions and actors present, for the console's filter menus."""
    actions = await conn.execute(select(audit_log.c.action).distinct().order_by("action"))
    actors = await conn.execute(select(audit_log.c.actor).distinct().order_by("actor"))
    return list(actions.scalars()), list(actors.scalars())
