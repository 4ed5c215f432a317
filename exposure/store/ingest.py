"""Named queries for ingestion: runs and checkpoints, identifier look-ups and password checks.
(The leaked-password corpus is :mod:`exposure.store.corpus`.)"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import LargeBinary, Table, func, insert, literal, select, tuple_, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.clock import utcnow
from exposure.domain.fingerprints import FINGERPRINT_BYTES
from exposure.domain.lifecycle import ExposureKey
from exposure.store.dialect import IN_LIST_SIZE, in_lists, one_of, upsert
from exposure.store.models import (
    Customer,
    CustomerIdentifier,
    Exposure,
    IngestRun,
    PasswordCheck,
    Sighting,
    TweakCheck,
)

runs = cast(Table, IngestRun.__table__)
identifiers = cast(Table, CustomerIdentifier.__table__)
customers = cast(Table, Customer.__table__)
checks = cast(Table, PasswordCheck.__table__)
tweak_checks = cast(Table, TweakCheck.__table__)
sightings = cast(Table, Sighting.__table__)
exposures = cast(Table, Exposure.__table__)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    checkpoint: int
    stats: dict[str, Any]
    feeds_corpus: bool
    resumed: bool


@dataclass(frozen=True, slots=True)
class EnrolledMatch:
    customer_id: str
    kind: str
    strength: str
    hint: str


async def fingerprint_prefixes(conn: AsyncConnection, length: int) -> bytes:
    """The first ``length`` bytes of every enrolled fingerprint (strict and variant),
    concatenated: what the in-memory index is built from.

    The database concatenates them (one value of ten million short prefixes, never ten million
    row objects in Python): ``string_agg`` of ``bytea`` on PostgreSQL; on SQLite, which has no
    binary aggregate, ``group_concat`` of the blobs cast back to a blob (it appends each
    value's bytes by length, so NUL and non-UTF-8 bytes pass through; hex would double the
    bytes to build and parse). Order does not matter: the index sorts.
    """
    column = identifiers.c.fingerprint
    if conn.dialect.name == "postgresql":
        aggregate = func.string_agg(func.substring(column, 1, length), literal(b"", LargeBinary))
        return bytes((await conn.execute(select(aggregate))).scalar_one() or b"")
    # SQLite concatenates whole fingerprints quicker than the copies substr() makes of their
    # prefixes (1.2M: 0.12 s against 0.2 s, measured); they are cut here when all are as long
    # as an HMAC-SHA256, which every scheme so far writes.
    whole = sql_cast(func.group_concat(column, ""), LargeBinary)
    count, value = (await conn.execute(select(func.count(), whole))).one()
    joined = bytes(value or b"")
    if len(joined) == count * FINGERPRINT_BYTES:
        rows = np.frombuffer(joined, dtype=np.uint8).reshape(count, FINGERPRINT_BYTES)
        return rows[:, :length].tobytes()
    prefixes = sql_cast(func.group_concat(func.substr(column, 1, length), ""), LargeBinary)
    return bytes((await conn.execute(select(prefixes))).scalar_one() or b"")


async def start_run(
    conn: AsyncConnection, *, source: str, input_name: str, content_key: str
) -> Run:
    """Resume the unfinished run over the same content, or start a new one."""
    unfinished = (
        await conn.execute(
            select(runs.c.id, runs.c.checkpoint, runs.c.stats, runs.c.feeds_corpus)
            .where(runs.c.content_key == content_key, runs.c.state == "running")
            .order_by(runs.c.id.desc())
            .limit(1)
        )
    ).first()
    if unfinished is not None:
        return Run(
            unfinished.id,
            unfinished.checkpoint,
            json.loads(unfinished.stats),
            unfinished.feeds_corpus,
            resumed=True,
        )
    seen_before = (
        await conn.execute(
            select(runs.c.id)
            .where(runs.c.content_key == content_key, runs.c.state == "completed")
            .limit(1)
        )
    ).first()
    now = utcnow()
    run_id = (
        await conn.execute(
            insert(runs)
            .values(
                source=source,
                input_name=input_name,
                content_key=content_key,
                state="running",
                feeds_corpus=seen_before is None,
                checkpoint=0,
                stats="{}",
                started_at=now,
                updated_at=now,
            )
            .returning(runs.c.id)
        )
    ).scalar_one()
    return Run(run_id, 0, {}, seen_before is None, resumed=False)


async def save_checkpoint(
    conn: AsyncConnection, run_id: int, checkpoint: int, stats: Mapping[str, Any], *, done: bool
) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "checkpoint": checkpoint,
        "stats": json.dumps(stats, sort_keys=True),
        "updated_at": now,
    }
    if done:
        values |= {"state": "completed", "finished_at": now}
    await conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


async def lookup_identifiers(
    conn: AsyncConnection, fingerprints: Collection[bytes]
) -> dict[bytes, list[EnrolledMatch]]:
    """Confirm index candidates against the full fingerprints."""
    found: dict[bytes, list[EnrolledMatch]] = {}
    for wanted in in_lists(fingerprints):
        rows = await conn.execute(
            select(
                identifiers.c.fingerprint,
                identifiers.c.customer_id,
                identifiers.c.kind,
                identifiers.c.strength,
                identifiers.c.hint,
            ).where(one_of(conn, identifiers.c.fingerprint, wanted))
        )
        for fp, customer_id, kind, strength, hint in rows:
            found.setdefault(bytes(fp), []).append(EnrolledMatch(customer_id, kind, strength, hint))
    return found


async def password_hashes(
    conn: AsyncConnection, customer_ids: Collection[str]
) -> dict[str, str | None]:
    """Each customer's usable enrolled hash: None when none is enrolled, and when a completed
    reset superseded it (the customer is judged ``unknown`` until a new one is enrolled)."""
    hashes: dict[str, str | None] = {}
    for wanted in in_lists(customer_ids):
        rows = await conn.execute(
            select(
                customers.c.customer_id,
                customers.c.password_hash,
                customers.c.password_superseded_at,
            ).where(one_of(conn, customers.c.customer_id, wanted))
        )
        hashes.update({cid: None if superseded else phc for cid, phc, superseded in rows})
    return hashes


CheckKey = tuple[str, bytes, bytes]  # customer_id, password fingerprint, enrolled-hash key


async def known_checks(conn: AsyncConnection, keys: Collection[CheckKey]) -> dict[CheckKey, bool]:
    """Verdicts already recorded for these (customer, leaked password, enrolled hash) triples."""
    known: dict[CheckKey, bool] = {}
    columns = tuple_(checks.c.customer_id, checks.c.password_fp, checks.c.hash_key)
    # Three bound values per key.
    for wanted in in_lists(keys, IN_LIST_SIZE // 3):
        rows = await conn.execute(
            select(
                checks.c.customer_id, checks.c.password_fp, checks.c.hash_key, checks.c.verified
            ).where(columns.in_(wanted))
        )
        known.update({(cid, bytes(fp), bytes(hk)): bool(ok) for cid, fp, hk, ok in rows})
    return known


async def record_checks(conn: AsyncConnection, verdicts: Mapping[CheckKey, bool]) -> None:
    if not verdicts:
        return
    now = utcnow()
    await conn.execute(
        upsert(conn, checks).on_conflict_do_nothing(),
        [
            {
                "customer_id": cid,
                "password_fp": fp,
                "hash_key": hk,
                "verified": ok,
                "checked_at": now,
            }
            for (cid, fp, hk), ok in verdicts.items()
        ],
    )


async def known_tweak_checks(
    conn: AsyncConnection, keys: Collection[CheckKey], guesses: int
) -> dict[CheckKey, bool]:
    """Tweak verdicts already recorded for these triples: a match at any budget, and a miss
    checked with at least ``guesses`` variants (a larger budget than a miss was checked with
    checks again)."""
    known: dict[CheckKey, bool] = {}
    columns = tuple_(
        tweak_checks.c.customer_id, tweak_checks.c.password_fp, tweak_checks.c.hash_key
    )
    for wanted in in_lists(keys, IN_LIST_SIZE // 3):
        rows = await conn.execute(
            select(
                tweak_checks.c.customer_id,
                tweak_checks.c.password_fp,
                tweak_checks.c.hash_key,
                tweak_checks.c.tweaked,
                tweak_checks.c.guesses,
            ).where(columns.in_(wanted))
        )
        for cid, fp, hk, tweaked, checked_with in rows:
            if tweaked or checked_with >= guesses:
                known[(cid, bytes(fp), bytes(hk))] = bool(tweaked)
    return known


async def record_tweak_checks(
    conn: AsyncConnection, verdicts: Mapping[CheckKey, bool], guesses: int
) -> None:
    """Record that these triples were tweak-checked with ``guesses`` variants, and whether one
    matched (never which)."""
    if not verdicts:
        return
    now = utcnow()
    statement = upsert(conn, tweak_checks)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[
                tweak_checks.c.customer_id,
                tweak_checks.c.password_fp,
                tweak_checks.c.hash_key,
            ],
            set_={
                "tweaked": statement.excluded.tweaked,
                "guesses": statement.excluded.guesses,
                "checked_at": statement.excluded.checked_at,
            },
        ),
        [
            {
                "customer_id": cid,
                "password_fp": fp,
                "hash_key": hk,
                "tweaked": tweaked,
                "guesses": guesses,
                "checked_at": now,
            }
            for (cid, fp, hk), tweaked in verdicts.items()
        ],
    )


async def written_sightings(
    conn: AsyncConnection, run_id: int, *, after: int, up_to: int
) -> set[tuple[ExposureKey, int]]:
    """The (exposure key, ordinal) of every sighting run ``run_id`` wrote for the events
    numbered ``after + 1`` to ``up_to``: what an interrupted run committed of a batch before
    its checkpoint covered it (a resumed run writes the rest only)."""
    rows = await conn.execute(
        select(
            exposures.c.customer_id,
            exposures.c.identifier_kind,
            exposures.c.password_fp,
            exposures.c.site_domain,
            sightings.c.ordinal,
        )
        .join(exposures, exposures.c.exposure_id == sightings.c.exposure_id)
        .where(
            sightings.c.run_id == run_id,
            sightings.c.ordinal > after,
            sightings.c.ordinal <= up_to,
        )
    )
    return {
        (ExposureKey(customer_id, kind, bytes(password_fp), site), ordinal)
        for customer_id, kind, password_fp, site, ordinal in rows
    }
