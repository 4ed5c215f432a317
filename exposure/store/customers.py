"""Named queries over customers and their identifier fingerprints."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.clock import utcnow
from exposure.customers.enrolment import PreparedBatch
from exposure.store import index_file
from exposure.store.dialect import in_lists, is_postgres, placeholders, timestamp_param
from exposure.store.models import (
    Case,
    Customer,
    CustomerIdentifier,
    EmailRangeKey,
    Exposure,
    OutboxEvent,
    PasswordCheck,
    TweakCheck,
)

customers = cast(Table, Customer.__table__)
identifiers = cast(Table, CustomerIdentifier.__table__)
email_range_keys = cast(Table, EmailRangeKey.__table__)
password_checks = cast(Table, PasswordCheck.__table__)
tweak_checks = cast(Table, TweakCheck.__table__)
exposures = cast(Table, Exposure.__table__)
cases = cast(Table, Case.__table__)
outbox = cast(Table, OutboxEvent.__table__)


async def upsert_customers(conn: AsyncConnection, batch: PreparedBatch) -> None:
    """Insert new customers, add new identifiers, update changed password hashes, and forget
    the hash of customers whose new one was refused (``batch.cleared``).

    Idempotent: enrolling the same rows again changes nothing (not even ``updated_at``). The
    batch has repeated customer ids merged already, because PostgreSQL refuses to touch one
    row twice in a single ``ON CONFLICT DO UPDATE``. This is the bulk path (a million customers
    a minute), so it hands tuples straight to the driver, in key order so the inserts walk
    each index instead of jumping around it.
    """
    if not batch.customers:
        return
    now = timestamp_param(conn, utcnow())
    distinct = "IS DISTINCT FROM" if is_postgres(conn) else "IS NOT"
    await conn.exec_driver_sql(
        # Fixed SQL text: only the placeholder list is generated.
        "INSERT INTO customers (customer_id, password_hash, created_at, updated_at) "  # noqa: S608
        f"VALUES ({placeholders(conn, 4)}) "
        "ON CONFLICT (customer_id) DO UPDATE SET "
        # A new hash replaces one a completed reset superseded (docs/decisions/cases.md).
        "password_hash = excluded.password_hash, password_superseded_at = NULL, "
        "updated_at = excluded.updated_at "
        "WHERE excluded.password_hash IS NOT NULL "
        f"AND customers.password_hash {distinct} excluded.password_hash",
        [(cid, phc, now, now) for cid, phc in batch.customers.items()],
    )
    for wanted in in_lists(sorted(batch.cleared)):
        await conn.execute(
            update(customers)
            .where(customers.c.customer_id.in_(wanted), customers.c.password_hash.is_not(None))
            .values(password_hash=None, updated_at=utcnow())
        )
    if batch.email_ranges:
        await conn.exec_driver_sql(
            "INSERT INTO email_range_keys (keyed_sha1, customer_id, prefix) "  # noqa: S608
            f"VALUES ({placeholders(conn, 3)}) ON CONFLICT DO NOTHING",
            [batch.email_ranges[key] for key in sorted(batch.email_ranges)],
        )
    if batch.identifiers:
        await conn.exec_driver_sql(
            "INSERT INTO customer_identifiers "  # noqa: S608
            "(fingerprint, customer_id, strength, kind, scheme, hint) "
            f"VALUES ({placeholders(conn, 6)}) ON CONFLICT DO NOTHING",
            [batch.identifiers[key] for key in sorted(batch.identifiers)],
        )
        await index_file.new_generation(conn)  # saved enrolled indexes lack these


@dataclass(frozen=True, slots=True, kw_only=True)
class Offboarded:
    """What offboarding did: the tombstone id what remains now names (None when the customer
    had nothing left to keep), and how many pending events were dead-lettered."""

    tombstone_id: str | None
    exposures: int
    cases: int
    events_rewritten: int
    pending_dead: int


TOMBSTONE_PREFIX = "deleted-"
OFFBOARDED_ERROR = "customer offboarded before delivery: not sent"


async def offboard_customer(
    conn: AsyncConnection, customer_id: str, *, now: datetime
) -> Offboarded | None:
    """Remove the customer's fingerprints, hints and hash, and move what must stay (exposures,
    cases and, through them, sightings and events) to a tombstone customer with no hash and
    no identifiers, so past figures and delivery history do not change and nothing left
    names the person. Events still pending are dead-lettered: a reset service must not act on
    a customer who is gone (docs/decisions/cases.md). None when not enrolled."""
    found = await conn.execute(
        select(customers.c.customer_id).where(customers.c.customer_id == customer_id)
    )
    if found.one_or_none() is None:
        return None
    for table in (identifiers, email_range_keys, password_checks, tweak_checks):
        await conn.execute(delete(table).where(table.c.customer_id == customer_id))
    exposure_ids = [
        row.exposure_id
        for row in await conn.execute(
            select(exposures.c.exposure_id).where(exposures.c.customer_id == customer_id)
        )
    ]
    case_count = (
        await conn.execute(
            select(func.count()).select_from(cases).where(cases.c.customer_id == customer_id)
        )
    ).scalar_one()
    tombstone: str | None = None
    rewritten = dead = 0
    if exposure_ids or case_count:
        tombstone = TOMBSTONE_PREFIX + secrets.token_hex(16)
        await conn.execute(
            insert(customers).values(
                customer_id=tombstone, password_hash=None, created_at=now, updated_at=now
            )
        )
        await conn.execute(
            update(cases).where(cases.c.customer_id == customer_id).values(customer_id=tombstone)
        )
        await conn.execute(
            update(exposures)
            .where(exposures.c.customer_id == customer_id)
            .values(customer_id=tombstone, identifier_hint="")
        )
        rewritten, dead = await _rewrite_events(conn, exposure_ids, tombstone, now=now)
    await conn.execute(delete(customers).where(customers.c.customer_id == customer_id))
    return Offboarded(
        tombstone_id=tombstone,
        exposures=len(exposure_ids),
        cases=int(case_count),
        events_rewritten=rewritten,
        pending_dead=dead,
    )


async def _rewrite_events(
    conn: AsyncConnection, exposure_ids: list[str], tombstone: str, *, now: datetime
) -> tuple[int, int]:
    """Name the tombstone in every stored body about these exposures; dead-letter those not
    sent yet."""
    rewritten = dead = 0
    for chunk in in_lists(exposure_ids):
        rows = (
            await conn.execute(
                select(outbox.c.id, outbox.c.payload, outbox.c.state).where(
                    outbox.c.exposure_id.in_(chunk)
                )
            )
        ).all()
        for row in rows:
            body = json.loads(row.payload)
            data = body.get("data")
            if isinstance(data, dict) and "customer_id" in data:
                data["customer_id"] = tombstone
            values: dict[str, Any] = {
                "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            }
            if row.state in ("pending", "failed"):
                values |= {
                    "state": "dead",
                    "last_error": OFFBOARDED_ERROR,
                    "lease_owner": None,
                    "lease_until": None,
                }
                dead += 1
            await conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
            rewritten += 1
    return rewritten, dead


async def delete_customer(conn: AsyncConnection, customer_id: str) -> bool:
    """Offboard a customer (:func:`offboard_customer`); True when the customer existed."""
    return await offboard_customer(conn, customer_id, now=utcnow()) is not None


async def replace_password_hash(
    conn: AsyncConnection, customer_id: str, password_hash: str, *, now: datetime
) -> None:
    """Enrol the hash a completed reset sent (it is no longer superseded)."""
    await conn.execute(
        update(customers)
        .where(customers.c.customer_id == customer_id)
        .values(password_hash=password_hash, password_superseded_at=None, updated_at=now)
    )


async def supersede_password_hash(conn: AsyncConnection, customer_id: str, *, at: datetime) -> None:
    """A reset completed without a new hash: from ``at`` the enrolled one is out of date, and
    leaked passwords are judged ``unknown`` until a new hash is enrolled."""
    await conn.execute(
        update(customers)
        .where(customers.c.customer_id == customer_id)
        .values(password_superseded_at=at, updated_at=at)
    )


@dataclass(frozen=True, slots=True)
class EnrolmentTotals:
    customers: int
    identifiers_by_kind: dict[str, int]


async def refresh_statistics(conn: AsyncConnection) -> None:
    """After a bulk enrolment, on PostgreSQL: fresh planner statistics for the customer tables.
    An ingest looks identifiers up by ``fingerprint IN (...)`` lists, which PostgreSQL, until
    autovacuum gets to the new rows, plans as a scan of every identifier (146 ms a batch
    instead of a few at a million customers: a 3M-line ingest 0.3 s slower). SQLite needs none:
    its plans do not depend on statistics it has not gathered."""
    if is_postgres(conn):
        await conn.execute(text("ANALYZE customers, customer_identifiers"))


async def totals(conn: AsyncConnection) -> EnrolmentTotals:
    customer_count = (await conn.execute(select(func.count()).select_from(customers))).scalar_one()
    by_kind = await conn.execute(
        select(identifiers.c.kind, func.count())
        .where(identifiers.c.strength == "strict")
        .group_by(identifiers.c.kind)
    )
    return EnrolmentTotals(customer_count, {kind: count for kind, count in by_kind.all()})
