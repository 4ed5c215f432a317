"""Named queries over exposures and their sightings: persisting what the lifecycle decides."""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, cast

from sqlalchemy import Row, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.domain.cases import CaseEventDue
from exposure.domain.lifecycle import (
    OPEN,
    Change,
    ExposureKey,
    ExposureState,
    Observation,
    on_sighting,
)
from exposure.domain.policy import Action, PasswordStatus, Severity
from exposure.store import cases as case_queries
from exposure.store.dialect import in_lists, insert_rows, one_of, timestamp_param
from exposure.store.ids import random_uuids
from exposure.store.models import Exposure, Sighting

exposures = cast(Table, Exposure.__table__)
sightings = cast(Table, Sighting.__table__)


@dataclass(slots=True)
class Applied:
    """What :func:`apply_observations` wrote, and the case events the lifecycle decided are
    due (the caller puts them in the outbox, in the same transaction)."""

    new_by_action: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    sightings: int = 0
    due: list[CaseEventDue] = field(default_factory=list)


class SightingRow(NamedTuple):
    """One ``sightings`` row as written (:data:`SIGHTING_COLUMNS`, driver values): where and
    when an exposure was seen."""

    exposure_id: str
    run_id: int
    ordinal: int
    source: str
    file: str
    line_no: int
    leak_type: str
    seen_at: Any  # timestamp_param(conn, now)


SIGHTING_COLUMNS = SightingRow._fields


class ExposureRecord(TypedDict):
    """One exposure with the contract's field names (``EXPOSURE_FIELDS``, in that order), as
    ``exposures --format jsonl|csv`` writes it: no site is ``None``, actions a list."""

    exposure_id: str
    case_id: str | None
    customer_id: str
    identifier_kind: str
    identifier_hint: str
    match_strength: str
    password_status: str
    action: str
    severity: str
    leak_type: str
    site_domain: str | None
    source: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    state: str
    reason: str
    recommended_actions: list[str]


# A leaked password a completed reset covered is not news again, unless it verifies against
# the hash enrolled since (the customer chose it again): then it is judged like any other.
_NEWS_EVEN_IF_COVERED = frozenset({PasswordStatus.LIVE, PasswordStatus.TWEAKED})


async def apply_observations(
    conn: AsyncConnection,
    observations: Sequence[Observation],
    *,
    run_id: int,
    source: str,
    now: datetime,
) -> Applied:
    """Create or update one exposure per observation, record its sightings, and put every
    new (or risen) exposure in its customer's case, in the caller's transaction, as the
    lifecycles (:mod:`exposure.domain.lifecycle`, :mod:`exposure.domain.cases`) decide. New
    exposures and sightings are written one statement per table (a large dump brings
    thousands at once); updates of known exposures go one by one.

    A leaked password a completed reset already covered (docs/decisions/cases.md) adds its
    sightings to the exposure that carried it, and nothing else: no case, no event."""
    applied = Applied()
    if not observations:
        return applied
    stamp = timestamp_param(conn, now)  # the driver's value, for the bulk rows
    customer_ids = sorted({o.key.customer_id for o in observations})
    covered = await case_queries.covered_passwords(conn, customer_ids)

    def covering(obs: Observation) -> str | None:
        key = obs.key
        if not key.password_fp or obs.password_status in _NEWS_EVEN_IF_COVERED:
            return None
        return covered.get((key.customer_id, key.password_fp))

    # Each new exposure is written naming the case it will join: the customer's open case
    # (locked until the transaction ends), or a new one's id; settle_cases corrects the rare
    # wrong guess (another writer opened the customer's case meanwhile).
    open_now = await case_queries.open_cases(conn, customer_ids, lock=True)
    unopened = [cid for cid in customer_ids if cid not in open_now]
    fresh_ids = dict(zip(unopened, random_uuids(len(unopened)), strict=True))
    guess = {
        cid: open_now[cid].case_id if cid in open_now else fresh_ids[cid] for cid in customer_ids
    }
    # Insert first: in a large dump most observations are new, and RETURNING tells which
    # were. Only the rest (known exposures, or one another ingest created meanwhile) are read
    # back, to be updated.
    new_ids = {o.key: i for o, i in zip(observations, random_uuids(len(observations)), strict=True)}
    candidates = [o for o in observations if covering(o) is None]
    inserted = await _insert(conn, candidates, new_ids, guess, source=source, stamp=stamp)
    known = [o.key for o in observations if new_ids[o.key] not in inserted]
    existing = await _existing(conn, known) if known else {}
    seen: list[SightingRow] = []
    seen_covered: list[SightingRow] = []
    joinings: list[case_queries.Joining] = []
    for obs in observations:
        exposure_id = new_ids[obs.key]
        customer_id = obs.key.customer_id
        if exposure_id in inserted:
            applied.new_by_action[obs.decision.action] += 1
            joinings.append(
                case_queries.Joining(
                    exposure_id=exposure_id,
                    observation=obs,
                    source=source,
                    first_seen=now,
                    case_id=guess[customer_id],
                    recommended_actions=tuple(obs.decision.recommended_actions),
                )
            )
            seen.extend(_sightings(exposure_id, obs, run_id=run_id, source=source, stamp=stamp))
            continue
        row = existing.get(obs.key)
        cover = covering(obs)
        if row is None:
            assert cover is not None  # only a covered observation skips the insert  # noqa: S101
            seen_covered.extend(_sightings(cover, obs, run_id=run_id, source=source, stamp=stamp))
            continue
        if cover is not None:
            change = Change(adopt=False, escalated=False, reopen=False, has_pin=row.has_pin)
        else:
            change = on_sighting(_state(row), obs)
        await _update(conn, row, obs, change, now=now)
        if change.event is not None:
            applied.escalations += 1
        if change.reopen or (change.adopt and row.state == OPEN) or row.case_id is None:
            joinings.append(
                case_queries.Joining(
                    exposure_id=row.exposure_id,
                    observation=obs,
                    source=row.source,
                    first_seen=row.first_seen,
                    case_id=row.case_id,
                    recommended_actions=tuple(
                        obs.decision.recommended_actions
                        if change.adopt
                        else json.loads(row.recommended_actions)
                    ),
                )
            )
        seen.extend(_sightings(row.exposure_id, obs, run_id=run_id, source=source, stamp=stamp))
    await insert_rows(conn, sightings, SIGHTING_COLUMNS, seen)
    applied.sightings = len(seen) + await _add_covered_sightings(conn, seen_covered, now=now)
    applied.due = await case_queries.settle_cases(
        conn, joinings, locked=open_now, fresh_ids=fresh_ids, now=now
    )
    return applied


async def _add_covered_sightings(
    conn: AsyncConnection, seen: Sequence[SightingRow], *, now: datetime
) -> int:
    """Sightings of covered passwords under new keys, on the exposures that carried them;
    only those not written before (a resumed run) count."""
    if not seen:
        return 0
    added = Counter(
        await insert_rows(conn, sightings, SIGHTING_COLUMNS, seen, returning="exposure_id")
    )
    for exposure_id in sorted(added):
        await conn.execute(
            update(exposures)
            .where(exposures.c.exposure_id == exposure_id)
            .values(last_seen=now, occurrences=exposures.c.occurrences + added[exposure_id])
        )
    return sum(added.values())


def _state(row: Row[Any]) -> ExposureState:
    return ExposureState(
        action=Action(row.action),
        severity=Severity(row.severity),
        strength=row.match_strength,
        state=row.state,
        has_pin=row.has_pin,
    )


async def _existing(
    conn: AsyncConnection, keys: Sequence[ExposureKey]
) -> dict[ExposureKey, Row[Any]]:
    found: dict[ExposureKey, Row[Any]] = {}
    wanted = set(keys)
    for customer_ids in in_lists([k.customer_id for k in keys]):
        rows = await conn.execute(
            select(exposures).where(one_of(conn, exposures.c.customer_id, customer_ids))
        )
        for row in rows:
            key = ExposureKey(
                row.customer_id, row.identifier_kind, bytes(row.password_fp), row.site_domain
            )
            if key in wanted:
                found[key] = row
    return found


# The columns a new exposure is written with, in the order _insert gives them.
_INSERTED_COLUMNS = (
    "exposure_id",
    "case_id",
    "customer_id",
    "identifier_kind",
    "password_fp",
    "site_domain",
    "match_strength",
    "password_status",
    "action",
    "severity",
    "leak_type",
    "has_pin",
    "reason",
    "recommended_actions",
    "source",
    "identifier_hint",
    "state",
    "first_seen",
    "last_seen",
    "occurrences",
    "decided_at",
)


async def _insert(
    conn: AsyncConnection,
    observations: Sequence[Observation],
    new_ids: dict[ExposureKey, str],
    case_ids: dict[str, str],
    *,
    source: str,
    stamp: Any,
) -> set[str]:
    """Insert the observations under their ids in ``new_ids``, first seen at ``stamp`` (the
    driver's value of now); return the ids inserted (an exposure that exists already is
    skipped, not overwritten)."""
    rows = [
        (
            new_ids[obs.key],
            case_ids[obs.key.customer_id],
            obs.key.customer_id,
            obs.key.identifier_kind,
            obs.key.password_fp,
            obs.key.site_domain,
            obs.strength,
            obs.password_status,
            obs.decision.action.value,
            obs.decision.severity.value,
            obs.leak_type,
            obs.has_pin,
            obs.decision.reason,
            _actions_json(obs.decision.recommended_actions),
            source,
            obs.hint,
            OPEN,
            stamp,
            stamp,
            len(obs.sightings),
            stamp,
        )
        for obs in observations
    ]
    return set(await insert_rows(conn, exposures, _INSERTED_COLUMNS, rows, returning="exposure_id"))


async def _update(
    conn: AsyncConnection, row: Row[Any], obs: Observation, change: Change, *, now: datetime
) -> None:
    """Persist ``change``: bump the counters, adopt the new decision, reopen."""
    values: dict[str, Any] = {
        "last_seen": now,
        "occurrences": exposures.c.occurrences + len(obs.sightings),
    }
    if change.adopt:
        values |= {
            "match_strength": obs.strength,
            "password_status": obs.password_status,
            "action": obs.decision.action.value,
            "severity": obs.decision.severity.value,
            "leak_type": obs.leak_type,
            "has_pin": change.has_pin,
            "reason": obs.decision.reason,
            "recommended_actions": _actions_json(obs.decision.recommended_actions),
            "decided_at": now,
        }
    if change.reopen:
        values |= {"state": OPEN, "resolution": None, "resolved_at": None, "resolved_by": None}
    await conn.execute(
        update(exposures).where(exposures.c.exposure_id == row.exposure_id).values(**values)
    )


@functools.lru_cache(maxsize=64)
def _actions_json(actions: tuple[str, ...]) -> str:
    """The stored form of recommended actions: a few distinct lists, encoded once each."""
    return json.dumps(list(actions))


def _sightings(
    exposure_id: str, obs: Observation, *, run_id: int, source: str, stamp: Any
) -> list[SightingRow]:
    return [
        SightingRow(exposure_id, run_id, s.ordinal, source, s.file, s.line_no, s.leak_type, stamp)
        for s in obs.sightings
    ]


# The contract's exposure fields, in its order (ExposureRecord's keys).
EXPOSURE_FIELDS = (
    "exposure_id",
    "case_id",
    "customer_id",
    "identifier_kind",
    "identifier_hint",
    "match_strength",
    "password_status",
    "action",
    "severity",
    "leak_type",
    "site_domain",
    "source",
    "first_seen",
    "last_seen",
    "occurrences",
    "state",
    "reason",
    "recommended_actions",
)


async def iter_exposures(
    conn: AsyncConnection,
    *,
    action: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
) -> AsyncIterator[ExposureRecord]:
    """Exposures, oldest first, with the contract's field names. ``since``
    keeps those first seen at or after it, as the API's ``since`` does."""
    query = select(*(exposures.c[name] for name in EXPOSURE_FIELDS)).order_by(
        exposures.c.first_seen, exposures.c.exposure_id
    )
    if action is not None:
        query = query.where(exposures.c.action == action)
    if state is not None:
        query = query.where(exposures.c.state == state)
    if since is not None:
        query = query.where(exposures.c.first_seen >= since)
    result = await conn.stream(query)
    async for row in result:
        yield ExposureRecord(
            exposure_id=row.exposure_id,
            case_id=row.case_id,
            customer_id=row.customer_id,
            identifier_kind=row.identifier_kind,
            identifier_hint=row.identifier_hint,
            match_strength=row.match_strength,
            password_status=row.password_status,
            action=row.action,
            severity=row.severity,
            leak_type=row.leak_type,
            site_domain=row.site_domain or None,
            source=row.source,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            occurrences=row.occurrences,
            state=row.state,
            reason=row.reason,
            recommended_actions=json.loads(row.recommended_actions),
        )
