"""Named queries over customers and their identifier fingerprints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.clock import utcnow
from exposure.customers.enrolment import PreparedBatch
from exposure.store.dialect import in_lists, is_postgres, placeholders, timestamp_param
from exposure.store.models import Customer, CustomerIdentifier

customers = cast(Table, Customer.__table__)
identifiers = cast(Table, CustomerIdentifier.__table__)


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


async def delete_customer(conn: AsyncConnection, customer_id: str) -> bool:
    """Remove a customer and (by cascade) every fingerprint; True when the customer existed."""
    await conn.execute(delete(identifiers).where(identifiers.c.customer_id == customer_id))
    result = await conn.execute(delete(customers).where(customers.c.customer_id == customer_id))
    return bool(result.rowcount)


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


async def totals(conn: AsyncConnection) -> EnrolmentTotals:
    customer_count = (await conn.execute(select(func.count()).select_from(customers))).scalar_one()
    by_kind = await conn.execute(
        select(identifiers.c.kind, func.count())
        .where(identifiers.c.strength == "strict")
        .group_by(identifiers.c.kind)
    )
    return EnrolmentTotals(customer_count, {kind: count for kind, count in by_kind.all()})
