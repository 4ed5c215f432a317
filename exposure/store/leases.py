"""Leases: how several processes share out rows of a work table without a cluster protocol.

A worker *claims* rows by writing its owner id and a ``lease_until`` into them; while the lease
runs nobody else takes them, and a dead worker's rows become claimable again once it ends. Two
queues work this way: the webhook outbox (:mod:`exposure.store.outbox`) and the byte ranges of
large dumps (:mod:`exposure.store.large_files`).

A claim is one conditional ``UPDATE ... RETURNING``: the row must still be claimable when the
write lands, so two claimers can never both win it. Its candidates come from a ``SELECT`` that,
on PostgreSQL, takes ``FOR UPDATE SKIP LOCKED``, so concurrent claimers pick disjoint rows
instead of queueing behind each other's locks; SQLite has one writer at a time and a single
``UPDATE`` takes the write lock before it reads, so the same statement is atomic there.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.dialect import is_postgres

OWNER_ID_CHARS = 64  # the width of every ``lease_owner`` column


def new_owner_id() -> str:
    """Host, process and a random part: unique per worker, readable in ``lease_owner``."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"[:OWNER_ID_CHARS]


def unleased(table: Table, now: datetime) -> ColumnElement[bool]:
    """Rows nobody holds at ``now``: never leased, or their lease has ended."""
    return or_(table.c.lease_until.is_(None), table.c.lease_until <= now)


async def claim_rows(
    conn: AsyncConnection,
    table: Table,
    *,
    claimable: ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    values: Mapping[str, Any],
    returning: Sequence[Any],
) -> Sequence[Row[Any]]:
    """Set ``values`` (the lease) on up to ``limit`` rows of ``table`` that are ``claimable``,
    first in ``order_by``, and return their ``returning`` columns.

    The candidates are a MATERIALIZED CTE, evaluated exactly once: as an ``IN (subquery)``
    PostgreSQL may re-run the subquery per row, and each re-run skips the rows this statement
    already locked and so returns the NEXT ones, claiming far more than ``limit``.
    """
    candidates = select(table.c.id).where(claimable).order_by(*order_by).limit(limit)
    if is_postgres(conn):
        candidates = candidates.with_for_update(skip_locked=True)
    chosen = candidates.cte("due")
    if is_postgres(conn):
        chosen = chosen.prefix_with("MATERIALIZED")
    result = await conn.execute(
        update(table)
        .where(table.c.id.in_(select(chosen.c.id)), claimable)
        .values(**values)
        .returning(*returning)
    )
    return result.all()
