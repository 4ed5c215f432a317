"""Named queries for connectors: the run lock, cursors, runs and their status, the e-mail
range keys HIBP's k-anonymity search is matched against, and merging Pwned Passwords counts
into the corpus."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure import JsonObject
from exposure.clock import iso_utc
from exposure.errors import FatalError
from exposure.store.dialect import in_lists, upsert
from exposure.store.models import (
    ConnectorRun,
    ConnectorState,
    CustomerIdentifier,
    EmailRangeKey,
    Exposure,
    LeakedPassword,
    Sighting,
)
from exposure.store.reconnect import is_transient

state = cast(Table, ConnectorState.__table__)
runs = cast(Table, ConnectorRun.__table__)
range_keys = cast(Table, EmailRangeKey.__table__)
identifiers = cast(Table, CustomerIdentifier.__table__)
exposures = cast(Table, Exposure.__table__)
sightings = cast(Table, Sighting.__table__)
corpus = cast(Table, LeakedPassword.__table__)

ERROR_CHARS = 1000
PASSWORD_PREFIXES = 16**5


class CursorNotJson(FatalError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"connector {name!r} produced a cursor that is not JSON; fix the connector"
        )


# -- cursors --------------------------------------------------------------------------------


async def load_cursor(conn: AsyncConnection, name: str) -> dict[str, Any] | None:
    text = (
        await conn.execute(select(state.c.cursor).where(state.c.name == name))
    ).scalar_one_or_none()
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


async def save_cursor(
    conn: AsyncConnection, name: str, cursor: dict[str, Any] | None, *, now: datetime
) -> None:
    """Upsert the cursor in the caller's transaction (the one that stores the page)."""
    try:
        text = None if cursor is None else json.dumps(cursor, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        raise CursorNotJson(name) from None
    statement = upsert(conn, state).values(name=name, cursor=text, updated_at=now)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[state.c.name], set_={"cursor": text, "updated_at": now}
        )
    )


# -- the run lock ---------------------------------------------------------------------------

_HELD: set[tuple[str, str]] = set()  # SQLite: (database, connector) running in this process


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per connector name for ``pg_try_advisory_lock``."""
    digest = hashlib.blake2b(f"exposure.connector:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# How often the connection holding a PostgreSQL run lock is checked: when it is gone (the
# server restarted, failed over or ended the session), so is the lock.
LOCK_CHECK_SECONDS = 2.0


@dataclass(slots=True)
class RunLock:
    """Whether the run may go ahead (``acquired``); ``lost`` is set if the database session
    holding the lock ends during the run (another replica may then take the lock)."""

    acquired: bool
    lost: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def connector_lock(engine: AsyncEngine, name: str) -> AsyncIterator[RunLock]:
    """Whether this run may go ahead; held until the block ends. PostgreSQL: a session-level
    advisory lock on a connection of its own, so one replica runs the connector at a time,
    watched so that the run learns when the session (and with it the lock) is gone.
    SQLite (one process by design): an in-process guard."""
    if engine.dialect.name != "postgresql":
        key = (str(engine.url), name)
        if key in _HELD:
            yield RunLock(False)
            return
        _HELD.add(key)
        try:
            yield RunLock(True)
        finally:
            _HELD.discard(key)
        return
    async with engine.connect() as conn:
        lock_key = advisory_key(name)
        acquired = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key}))
        # A session lock outlives the transaction: commit so the connection is not left idle
        # in a transaction for the whole run.
        await conn.commit()
        lock = RunLock(acquired)
        watch = asyncio.create_task(_watch(conn, lock)) if acquired else None
        try:
            yield lock
        finally:
            if watch is not None:
                watch.cancel()
                with suppress(asyncio.CancelledError):
                    await watch
                await _unlock(conn, lock_key, lock)


async def _watch(conn: AsyncConnection, lock: RunLock) -> None:
    """Set ``lock.lost`` once the lock's connection stops answering."""
    while True:
        await asyncio.sleep(LOCK_CHECK_SECONDS)
        try:
            await conn.execute(text("SELECT 1"))
            await conn.commit()
        except Exception as error:
            if not is_transient(error):
                raise
            lock.lost.set()
            return


async def _unlock(conn: AsyncConnection, key: int, lock: RunLock) -> None:
    try:
        if lock.lost.is_set():
            raise ConnectionError("the lock's session has ended")
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        await conn.commit()
    except BaseException as error:
        # The lock must not go back to the pool with the connection: drop the connection,
        # which ends its session and so releases the lock. A session already gone released
        # it already.
        await conn.invalidate()
        if not is_transient(error):
            raise


# -- runs -----------------------------------------------------------------------------------


async def start_run(conn: AsyncConnection, name: str, *, now: datetime) -> int:
    result = await conn.execute(
        insert(runs)
        .values(connector=name, started_at=now, outcome="running", pages=0, records=0, matched=0)
        .returning(runs.c.id)
    )
    return int(result.scalar_one())


async def close_interrupted(conn: AsyncConnection, name: str, *, now: datetime) -> int:
    """Mark runs left ``running`` by a process that died as failed; call while holding the lock."""
    result = await conn.execute(
        update(runs)
        .where(runs.c.connector == name, runs.c.outcome == "running")
        .values(
            outcome="failed",
            finished_at=now,
            error_class="retriable",
            error="interrupted: the process ended during the run",
        )
    )
    return int(result.rowcount)


async def update_run(
    conn: AsyncConnection,
    run_id: int,
    *,
    pages: int,
    records: int,
    matched: int,
    outcome: str | None = None,
    error_class: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Progress counters; with ``outcome`` also the end of the run."""
    values: dict[str, Any] = {"pages": pages, "records": records, "matched": matched}
    if outcome is not None:
        values |= {
            "outcome": outcome,
            "finished_at": now,
            "error_class": error_class,
            "error": error[:ERROR_CHARS] if error else None,
        }
    await conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


async def record_skipped(conn: AsyncConnection, name: str, reason: str, *, now: datetime) -> int:
    result = await conn.execute(
        insert(runs)
        .values(
            connector=name,
            started_at=now,
            finished_at=now,
            outcome="skipped",
            pages=0,
            records=0,
            matched=0,
            error=reason,
        )
        .returning(runs.c.id)
    )
    return int(result.scalar_one())


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One finished connector run, as ``exposure connectors status`` shows it."""

    run_id: int
    started_at: datetime | None
    finished_at: datetime | None
    pages: int
    records: int
    matched: int
    error_class: str | None
    error: str | None

    def as_json(self) -> JsonObject:
        return {
            "run_id": self.run_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "pages": self.pages,
            "records": self.records,
            "matched": self.matched,
            "error_class": self.error_class,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorStatus:
    """How a connector fares: its last success and failure, run counts by outcome."""

    connector: str
    runs: Mapping[str, int]
    running: bool
    last_success: RunRecord | None
    last_failure: RunRecord | None
    cursor_updated_at: datetime | None

    def as_json(self) -> JsonObject:
        return {
            "connector": self.connector,
            "runs": dict(sorted(self.runs.items())),
            "running": self.running,
            "last_success": self.last_success.as_json() if self.last_success else None,
            "last_failure": self.last_failure.as_json() if self.last_failure else None,
            "cursor_updated_at": _iso(self.cursor_updated_at),
        }


async def status(conn: AsyncConnection, names: Iterable[str] = ()) -> list[ConnectorStatus]:
    """Per connector (those that ever ran, plus ``names``): its last success and last failure,
    run counts by outcome, whether one is running, and when its cursor last moved."""
    counts: dict[str, Counter[str]] = {}
    for connector, outcome, number in await conn.execute(
        select(runs.c.connector, runs.c.outcome, func.count()).group_by(
            runs.c.connector, runs.c.outcome
        )
    ):
        counts.setdefault(connector, Counter())[outcome] = int(number)
    moved = dict(
        (name, when) for name, when in await conn.execute(select(state.c.name, state.c.updated_at))
    )
    report = []
    for name in sorted(set(counts) | set(names)):
        outcomes = counts.get(name, Counter())
        report.append(
            ConnectorStatus(
                connector=name,
                runs=dict(outcomes),
                running=outcomes["running"] > 0,
                last_success=await _last(conn, name, ("success",)),
                last_failure=await _last(conn, name, ("failed",)),
                cursor_updated_at=moved.get(name),
            )
        )
    return report


async def _last(conn: AsyncConnection, name: str, outcomes: Sequence[str]) -> RunRecord | None:
    row = (
        await conn.execute(
            select(runs)
            .where(runs.c.connector == name, runs.c.outcome.in_(outcomes))
            .order_by(runs.c.started_at.desc(), runs.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return RunRecord(
        run_id=row.id,
        started_at=row.started_at,
        finished_at=row.finished_at,
        pages=row.pages,
        records=row.records,
        matched=row.matched,
        error_class=row.error_class,
        error=row.error,
    )


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value, timespec="auto") if value is not None else None


# -- HIBP e-mail range search ---------------------------------------------------------------


async def email_range_prefixes(conn: AsyncConnection, *, after: str, limit: int) -> list[str]:
    rows = await conn.execute(
        select(range_keys.c.prefix)
        .where(range_keys.c.prefix > after)
        .group_by(range_keys.c.prefix)
        .order_by(range_keys.c.prefix)
        .limit(limit)
    )
    return [row[0] for row in rows]


async def email_range_customers(conn: AsyncConnection, prefix: str) -> list[tuple[bytes, str]]:
    """``(keyed_sha1, customer_id)`` of every enrolled e-mail whose SHA-1 starts with prefix."""
    rows = await conn.execute(
        select(range_keys.c.keyed_sha1, range_keys.c.customer_id).where(
            range_keys.c.prefix == prefix
        )
    )
    return [(bytes(keyed), customer_id) for keyed, customer_id in rows]


async def email_hints(conn: AsyncConnection, customer_ids: Collection[str]) -> dict[str, list[str]]:
    """Masked hints of each customer's e-mail addresses (strict keys only)."""
    hints: dict[str, list[str]] = {}
    for wanted in in_lists(sorted(set(customer_ids))):
        rows = await conn.execute(
            select(identifiers.c.customer_id, identifiers.c.hint).where(
                identifiers.c.customer_id.in_(wanted),
                identifiers.c.kind == "email",
                identifiers.c.strength == "strict",
            )
        )
        for customer_id, hint in rows:
            hints.setdefault(customer_id, []).append(hint)
    return hints


async def feed_sightings(
    conn: AsyncConnection, customer_ids: Collection[str], *, source: str
) -> set[tuple[str, str]]:
    """``(customer_id, file)`` already sighted from ``source`` on the customers' e-mail
    exposures without password or site (where HIBP range matches land)."""
    found: set[tuple[str, str]] = set()
    for wanted in in_lists(sorted(set(customer_ids))):
        rows = await conn.execute(
            select(exposures.c.customer_id, sightings.c.file)
            .select_from(
                sightings.join(exposures, sightings.c.exposure_id == exposures.c.exposure_id)
            )
            .where(
                exposures.c.customer_id.in_(wanted),
                and_(
                    exposures.c.identifier_kind == "email",
                    exposures.c.password_fp == b"",
                    exposures.c.site_domain == "",
                ),
                sightings.c.source == source,
            )
        )
        found.update((customer_id, file) for customer_id, file in rows)
    return found


# -- Pwned Passwords ------------------------------------------------------------------------


async def password_range_prefixes(conn: AsyncConnection, *, after: str, limit: int) -> list[str]:
    """Distinct 5-hex prefixes of the corpus after ``after``: one index seek per prefix, so a
    corpus of a hundred million rows costs ``limit`` seeks, not a scan."""
    found: list[str] = []
    lower = int(after, 16) + 1 if after else 0
    while len(found) < limit and lower < PASSWORD_PREFIXES:
        first = (
            await conn.execute(
                select(corpus.c.sha1)
                .where(corpus.c.sha1 >= (lower << 4).to_bytes(3, "big"))
                .order_by(corpus.c.sha1)
                .limit(1)
            )
        ).scalar_one_or_none()
        if first is None:
            break
        prefix = int.from_bytes(bytes(first)[:3], "big") >> 4
        found.append(f"{prefix:05X}")
        lower = prefix + 1
    return found
