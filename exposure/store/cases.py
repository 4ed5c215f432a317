"""Named queries over cases: which case an exposure joins, persisting what the case lifecycle
(:mod:`exposure.domain.cases`) decides, and ending a case with a resolution.

Exactly one open case per customer, even with several replicas on PostgreSQL: a case is
created with ``INSERT ... ON CONFLICT DO NOTHING`` against the partial unique index
``uq_cases_open_customer`` and read back, and an open case is read ``FOR UPDATE`` before it is
changed, in customer order (so two writers wait for each other instead of deadlocking). On
SQLite writes are serialised by the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.domain.cases import CaseState
from exposure.domain.policy import Action, Severity
from exposure.store.dialect import in_lists, is_postgres, upsert
from exposure.store.models import Case, Exposure

cases = cast(Table, Case.__table__)
exposures = cast(Table, Exposure.__table__)

OPEN = "open"
RESOLVED = "resolved"


class ResolveOutcome(Enum):
    RESOLVED = "resolved"  # this call set the resolution
    SAME = "same"  # already resolved the same way: an idempotent retry
    CONFLICT = "conflict"  # already resolved differently
    NOT_FOUND = "not_found"


CASE_FIELDS = (
    "case_id",
    "customer_id",
    "state",
    "action",
    "severity",
    "announced_action",
    "opened_at",
    "updated_at",
    "force_reset_at",
    "resolution",
    "resolved_at",
    "resolved_by",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseRow:
    """A stored case."""

    case_id: str
    customer_id: str
    state: str
    action: str
    severity: str
    announced_action: str | None
    opened_at: datetime
    updated_at: datetime
    force_reset_at: datetime | None
    resolution: str | None
    resolved_at: datetime | None
    resolved_by: str | None

    @classmethod
    def of(cls, row: Row[Any]) -> CaseRow:
        return cls(**{name: row._mapping[name] for name in CASE_FIELDS})

    def lifecycle_state(self) -> CaseState:
        return CaseState(
            action=Action(self.action),
            severity=Severity(self.severity),
            announced_action=None
            if self.announced_action is None
            else Action(self.announced_action),
            force_reset_at=self.force_reset_at,
        )


async def get_case(conn: AsyncConnection, case_id: str) -> CaseRow | None:
    row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).one_or_none()
    return None if row is None else CaseRow.of(row)


async def case_of_exposure(conn: AsyncConnection, exposure_id: str) -> tuple[bool, str | None]:
    """Whether the exposure exists, and its case id."""
    row = (
        await conn.execute(
            select(exposures.c.case_id).where(exposures.c.exposure_id == exposure_id)
        )
    ).one_or_none()
    return (False, None) if row is None else (True, row.case_id)


async def open_cases(
    conn: AsyncConnection, customer_ids: Sequence[str], *, lock: bool
) -> dict[str, CaseRow]:
    """The open case of each customer that has one. ``lock`` takes the rows ``FOR UPDATE`` on
    PostgreSQL, in customer order, until the transaction ends."""
    found: dict[str, CaseRow] = {}
    for chunk in in_lists(sorted(set(customer_ids))):
        query = (
            select(cases)
            .where(cases.c.customer_id.in_(chunk), cases.c.state == OPEN)
            .order_by(cases.c.customer_id)
        )
        if lock and is_postgres(conn):
            query = query.with_for_update()
        for row in await conn.execute(query):
            found[row.customer_id] = CaseRow.of(row)
    return found


async def insert_cases(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert open cases; return the ids inserted. A customer who has an open case already
    (another writer's, committed meanwhile) is skipped by the partial unique index."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: str(r["customer_id"]))
    result = await conn.execute(
        upsert(conn, cases).on_conflict_do_nothing().returning(cases.c.case_id), ordered
    )
    return set(result.scalars())


async def update_case(
    conn: AsyncConnection, case_id: str, state: CaseState, *, now: datetime
) -> None:
    await conn.execute(
        update(cases)
        .where(cases.c.case_id == case_id)
        .values(
            action=state.action.value,
            severity=state.severity.value,
            announced_action=None
            if state.announced_action is None
            else state.announced_action.value,
            force_reset_at=state.force_reset_at,
            updated_at=now,
        )
    )


async def resolve_case(
    conn: AsyncConnection,
    case_id: str,
    *,
    resolution: str,
    resolved_at: datetime,
    resolved_by: str,
) -> ResolveOutcome:
    """End an open case with a resolution, and every open exposure of it the same way.

    The ``state = 'open'`` guard makes concurrent or repeated calls safe: exactly one writer
    wins, and later calls are told whether they agree with it.
    """
    result = await conn.execute(
        update(cases)
        .where(cases.c.case_id == case_id, cases.c.state == OPEN)
        .values(
            state=RESOLVED,
            resolution=resolution,
            resolved_at=resolved_at,
            resolved_by=resolved_by,
            updated_at=resolved_at,
        )
    )
    if result.rowcount:
        await conn.execute(
            update(exposures)
            .where(exposures.c.case_id == case_id, exposures.c.resolution.is_(None))
            .values(
                state=resolution,
                resolution=resolution,
                resolved_at=resolved_at,
                resolved_by=resolved_by,
            )
        )
        return ResolveOutcome.RESOLVED
    current = await get_case(conn, case_id)
    if current is None:
        return ResolveOutcome.NOT_FOUND
    return ResolveOutcome.SAME if current.resolution == resolution else ResolveOutcome.CONFLICT
