"""Named queries over cases: which case an exposure joins, persisting what the case lifecycle
(:mod:`exposure.domain.cases`) decides, and ending a case with a resolution.

Exactly one open case per customer, even with several replicas on PostgreSQL: a case is
created with ``INSERT ... ON CONFLICT DO NOTHING`` against the partial unique index
``uq_cases_open_customer`` and read back, and an open case is read ``FOR UPDATE`` before it is
changed, in customer order (so two writers wait for each other instead of deadlocking). On
SQLite writes are serialised by the database itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.domain.cases import CaseChange, CaseEventDue, CaseState, on_exposure
from exposure.domain.lifecycle import Observation
from exposure.domain.policy import Action, Severity
from exposure.store.dialect import in_lists, insert_rows, is_postgres, one_of, timestamp_params
from exposure.store.ids import random_uuids
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
        return cls(**{field.name: row._mapping[field.name] for field in fields(cls)})

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
            .where(one_of(conn, cases.c.customer_id, chunk), cases.c.state == OPEN)
            .order_by(cases.c.customer_id)
        )
        if lock and is_postgres(conn):
            query = query.with_for_update()
        for row in await conn.execute(query):
            found[row.customer_id] = CaseRow.of(row)
    return found


# The columns a new case is written with, in the order insert_cases gives them.
_INSERTED_COLUMNS = (
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


async def insert_cases(conn: AsyncConnection, rows: Sequence[CaseRow]) -> set[str]:
    """Insert open cases; return the ids inserted. A customer who has an open case already
    (another writer's, committed meanwhile) is skipped by the partial unique index."""
    stamp = timestamp_params(conn)
    values = [
        (
            row.case_id,
            row.customer_id,
            row.state,
            row.action,
            row.severity,
            row.announced_action,
            stamp(row.opened_at),
            stamp(row.updated_at),
            stamp(row.force_reset_at),
            row.resolution,
            stamp(row.resolved_at),
            row.resolved_by,
        )
        for row in sorted(rows, key=lambda row: row.customer_id)
    ]
    return set(await insert_rows(conn, cases, _INSERTED_COLUMNS, values, returning="case_id"))


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Joining:
    """An exposure decision that joins its customer's case in this transaction: a new
    exposure, or a stored one whose decision rose (or that reopened). ``case_id`` is the case
    the exposure row names now (the writer's guess, corrected here if it was wrong)."""

    exposure_id: str
    observation: Observation
    source: str
    first_seen: datetime
    case_id: str | None
    recommended_actions: tuple[str, ...]  # as the exposure row holds them after this write

    @property
    def customer_id(self) -> str:
        return self.observation.key.customer_id

    def order(self) -> tuple[tuple[int, int, int], str, str, str]:
        """Strongest first, then by key: the order a customer's joinings are applied in, so
        a case opens at its highest action and the events do not depend on timing."""
        key = self.observation.key
        rank = self.observation.rank()
        return (
            (-rank[0], -rank[1], -rank[2]),
            key.identifier_kind,
            key.site_domain,
            key.password_fp.hex(),
        )


@dataclass(slots=True)
class _Settled:
    case_id: str
    change: CaseChange
    trigger: Joining | None


def _fold(case: CaseState | None, joinings: Sequence[Joining], *, now: datetime) -> _Settled:
    """Apply a customer's joinings, strongest first, to its open case (or none). Only the
    first can be due an event: after it, the case's announced action is its highest."""
    if len(joinings) == 1:  # most customers of a large dump: the change is the fold
        decision = joinings[0].observation.decision
        change = on_exposure(case, action=decision.action, severity=decision.severity, at=now)
        return _Settled("", change, joinings[0] if change.event is not None else None)
    state, opens, event, trigger = case, case is None, None, None
    for joining in joinings:
        decision = joining.observation.decision
        change = on_exposure(state, action=decision.action, severity=decision.severity, at=now)
        if change.event is not None and event is None:
            event, trigger = change.event, joining
        state = change.state
    assert state is not None  # at least one joining  # noqa: S101
    return _Settled("", CaseChange(opens=opens, state=state, event=event), trigger)


async def settle_cases(
    conn: AsyncConnection,
    joinings: Sequence[Joining],
    *,
    locked: dict[str, CaseRow],
    fresh_ids: dict[str, str],
    now: datetime,
) -> list[CaseEventDue]:
    """Put every joining exposure in its customer's open case (opening one when there is
    none: under ``fresh_ids[customer]`` when given), update each case as the lifecycle
    decides, and return the case events due (at most one per case and transaction).
    ``locked``: the open cases of the joinings' customers, read with ``open_cases(...,
    lock=True)`` in this transaction."""
    by_customer: dict[str, list[Joining]] = {}
    for joining in joinings:
        by_customer.setdefault(joining.customer_id, []).append(joining)
    for group in by_customer.values():
        if len(group) > 1:  # most customers of a large dump have one
            group.sort(key=Joining.order)
    settled: dict[str, _Settled] = {}
    opened: set[str] = set()  # customers whose case this transaction opened
    pending = sorted(by_customer)
    while pending:
        new_rows: list[CaseRow] = []
        for customer_id in pending:
            group = by_customer[customer_id]
            case = locked.get(customer_id)
            if case is not None:
                outcome = _fold(case.lifecycle_state(), group, now=now)
                outcome.case_id = case.case_id
                if outcome.change.state != case.lifecycle_state():
                    await update_case(conn, case.case_id, outcome.change.state, now=now)
            else:
                outcome = _fold(None, group, now=now)
                outcome.case_id = fresh_ids.pop(customer_id, "") or random_uuids(1)[0]
                new_rows.append(_case_row(outcome, customer_id, now=now))
            settled[customer_id] = outcome
        inserted = await insert_cases(conn, new_rows)
        opened.update(row.customer_id for row in new_rows if row.case_id in inserted)
        # A customer whose case another writer opened meanwhile joins that one instead.
        pending = [row.customer_id for row in new_rows if row.case_id not in inserted]
        if pending:
            locked = await open_cases(conn, pending, lock=True)
    await _assign(conn, settled, by_customer)
    due = [
        customer_id
        for customer_id in sorted(settled)
        if settled[customer_id].change.event is not None
    ]
    # A case opened here holds exactly its customer's joinings (every exposure written naming
    # it is one): only the members of cases opened before are read back.
    members_of = await _members(
        conn, [settled[customer_id].case_id for customer_id in due if customer_id not in opened]
    )
    events: list[CaseEventDue] = []
    for customer_id in due:
        outcome = settled[customer_id]
        members: list[tuple[str, Sequence[str]]]
        if customer_id in opened:
            joined = by_customer[customer_id]
            if len(joined) > 1:
                joined = sorted(joined, key=lambda j: (j.first_seen, j.exposure_id))
            members = [(j.exposure_id, j.recommended_actions) for j in joined]
        else:
            members = members_of.get(outcome.case_id, [])
        kind, announced, trigger = (
            outcome.change.event,
            outcome.change.state.announced_action,
            outcome.trigger,
        )
        # (An event announces an action, and has the joining that triggered it.)
        assert kind is not None and announced is not None and trigger is not None  # noqa: S101
        events.append(
            CaseEventDue(
                kind=kind,
                case_id=outcome.case_id,
                action=announced,
                exposure_id=trigger.exposure_id,
                observation=trigger.observation,
                source=trigger.source,
                first_seen=trigger.first_seen,
                exposure_ids=tuple(exposure_id for exposure_id, _ in members),
                # The union over the case's exposures, in the order they first appear.
                recommended_actions=tuple(
                    dict.fromkeys(action for _, actions in members for action in actions)
                ),
            )
        )
    return events


def _case_row(outcome: _Settled, customer_id: str, *, now: datetime) -> CaseRow:
    """The row of a case opened now, as the lifecycle left it."""
    state = outcome.change.state
    return CaseRow(
        case_id=outcome.case_id,
        customer_id=customer_id,
        state=OPEN,
        action=state.action.value,
        severity=state.severity.value,
        announced_action=None if state.announced_action is None else state.announced_action.value,
        opened_at=now,
        updated_at=now,
        force_reset_at=state.force_reset_at,
        resolution=None,
        resolved_at=None,
        resolved_by=None,
    )


async def _assign(
    conn: AsyncConnection, settled: dict[str, _Settled], by_customer: dict[str, list[Joining]]
) -> None:
    """Name the case on each joining exposure whose row names another (or none)."""
    moved: dict[str, list[str]] = {}  # case -> its exposures to move, in customer order
    for customer_id in sorted(settled):
        case_id = settled[customer_id].case_id
        for joining in by_customer[customer_id]:
            if joining.case_id != case_id:
                moved.setdefault(case_id, []).append(joining.exposure_id)
    for case_id, exposure_ids in moved.items():
        for chunk in in_lists(exposure_ids):
            await conn.execute(
                update(exposures).where(exposures.c.exposure_id.in_(chunk)).values(case_id=case_id)
            )


async def _members(
    conn: AsyncConnection, case_ids: Sequence[str]
) -> dict[str, list[tuple[str, Sequence[str]]]]:
    """The exposures of each case (oldest first) and their recommended actions: one query per
    ``IN`` list, not one per case (a dump can open thousands of cases in one step)."""
    found: dict[str, list[tuple[str, Sequence[str]]]] = {}
    for chunk in in_lists(sorted(set(case_ids))):
        rows = await conn.execute(
            select(exposures.c.case_id, exposures.c.exposure_id, exposures.c.recommended_actions)
            .where(exposures.c.case_id.in_(chunk))
            .order_by(exposures.c.case_id, exposures.c.first_seen, exposures.c.exposure_id)
        )
        for row in rows:
            found.setdefault(row.case_id, []).append(
                (row.exposure_id, json.loads(row.recommended_actions))
            )
    return found


async def covered_passwords(
    conn: AsyncConnection, customer_ids: Sequence[str]
) -> dict[tuple[str, bytes], str]:
    """Leaked passwords a completed reset covered: (customer, password fingerprint) -> the
    exposure that carries later sightings of it (the earliest of that password in the
    latest ``reset_completed`` case that saw it before its reset; docs/decisions/cases.md)."""
    rows: list[Any] = []
    for chunk in in_lists(sorted(set(customer_ids))):
        result = await conn.execute(
            select(
                exposures.c.customer_id,
                exposures.c.password_fp,
                exposures.c.exposure_id,
                exposures.c.first_seen,
                cases.c.resolved_at,
            )
            .join(cases, cases.c.case_id == exposures.c.case_id)
            .where(
                one_of(conn, exposures.c.customer_id, chunk),
                cases.c.resolution == "reset_completed",
                exposures.c.password_fp != b"",
                exposures.c.first_seen < cases.c.resolved_at,
            )
        )
        rows.extend(result.all())
    # The latest reset first; within it the earliest exposure (then the smallest id).
    rows.sort(key=lambda row: (row.first_seen, row.exposure_id))
    rows.sort(key=lambda row: row.resolved_at, reverse=True)
    found: dict[tuple[str, bytes], str] = {}
    for row in rows:
        found.setdefault((row.customer_id, bytes(row.password_fp)), row.exposure_id)
    return found
