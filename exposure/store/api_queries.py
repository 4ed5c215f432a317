"""Named queries behind the HTTP API: exposure pages and details, resolutions, the
leaked-password range scan and the figures ``/metrics`` reads at scrape time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Row, Select, Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from exposure.store.cases import ResolveOutcome
from exposure.store.exposures import EXPOSURE_FIELDS, ExposureRecord
from exposure.store.models import Customer, Exposure, Sighting

exposures = cast(Table, Exposure.__table__)
sightings = cast(Table, Sighting.__table__)
customers = cast(Table, Customer.__table__)

# The contract's fields plus what the broker's reset service needs to see its own acks.
API_EXPOSURE_FIELDS = (
    *EXPOSURE_FIELDS,
    "has_pin",
    "decided_at",
    "resolution",
    "resolved_at",
    "resolved_by",
)
SIGHTING_FIELDS = ("source", "file", "line_no", "leak_type", "seen_at")


class ApiExposure(ExposureRecord):
    """An exposure as the API shows it (``API_EXPOSURE_FIELDS``): the contract's fields, then
    what the broker's reset service needs to see its own acknowledgements."""

    has_pin: bool
    decided_at: datetime
    resolution: str | None
    resolved_at: datetime | None
    resolved_by: str | None


class SightingView(TypedDict):
    """One sighting of an exposure as the API shows it (``SIGHTING_FIELDS``)."""

    source: str
    file: str
    line_no: int
    leak_type: str
    seen_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureFilter:
    """Filters of ``GET /v1/exposures``; ``since``/``until`` bound ``first_seen`` (half-open)."""

    action: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Keyset:
    """Position after the last exposure of a page, in ``(first_seen, exposure_id)`` order."""

    first_seen: datetime
    exposure_id: str


def _api_exposure(row: Row[Any]) -> ApiExposure:
    item = cast(ApiExposure, dict(row._mapping))
    item["site_domain"] = item["site_domain"] or None
    item["recommended_actions"] = json.loads(row.recommended_actions)
    return item


def _exposure_select() -> Select[Any]:
    return select(*(exposures.c[name] for name in API_EXPOSURE_FIELDS))


async def exposure_page(
    conn: AsyncConnection, where: ExposureFilter, *, after: Keyset | None, limit: int
) -> tuple[list[ApiExposure], Keyset | None]:
    """One page of exposures, oldest first, and the keyset of the next page (None at the end).

    Keyset pagination on the immutable ``(first_seen, exposure_id)`` pair: rows inserted or
    updated while a client pages through never cause duplicates or gaps among older rows.
    """
    query = _exposure_select().order_by(exposures.c.first_seen, exposures.c.exposure_id)
    if where.action is not None:
        query = query.where(exposures.c.action == where.action)
    if where.state is not None:
        query = query.where(exposures.c.state == where.state)
    if where.since is not None:
        query = query.where(exposures.c.first_seen >= where.since)
    if where.until is not None:
        query = query.where(exposures.c.first_seen < where.until)
    if after is not None:
        # Spelled out rather than a row-value comparison, which older SQLite builds lack.
        query = query.where(
            or_(
                exposures.c.first_seen > after.first_seen,
                and_(
                    exposures.c.first_seen == after.first_seen,
                    exposures.c.exposure_id > after.exposure_id,
                ),
            )
        )
    rows = (await conn.execute(query.limit(limit + 1))).all()
    page = [_api_exposure(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return page, None
    last = page[-1]
    return page, Keyset(last["first_seen"], last["exposure_id"])


async def get_exposure(conn: AsyncConnection, exposure_id: str) -> ApiExposure | None:
    query = _exposure_select().where(exposures.c.exposure_id == exposure_id)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else _api_exposure(row)


async def exposure_sightings(
    conn: AsyncConnection, exposure_id: str, *, limit: int
) -> tuple[list[SightingView], int]:
    """The most recent ``limit`` sightings of an exposure (newest first) and how many exist."""
    total = (
        await conn.execute(
            select(func.count())
            .select_from(sightings)
            .where(sightings.c.exposure_id == exposure_id)
        )
    ).scalar_one()
    rows = await conn.execute(
        select(*(sightings.c[name] for name in SIGHTING_FIELDS))
        .where(sightings.c.exposure_id == exposure_id)
        .order_by(sightings.c.seen_at.desc(), sightings.c.id.desc())
        .limit(limit)
    )
    return [cast(SightingView, dict(row._mapping)) for row in rows], total


async def resolve_exposure(
    conn: AsyncConnection,
    exposure_id: str,
    *,
    resolution: str,
    resolved_at: datetime,
    resolved_by: str,
) -> ResolveOutcome:
    """Record the broker's resolution once; the state becomes the resolution.

    The ``resolution IS NULL`` guard makes concurrent or repeated calls safe: exactly one
    writer wins, and later calls are told whether they agree with it.
    """
    result = await conn.execute(
        update(exposures)
        .where(exposures.c.exposure_id == exposure_id, exposures.c.resolution.is_(None))
        .values(
            state=resolution,
            resolution=resolution,
            resolved_at=resolved_at,
            resolved_by=resolved_by,
        )
    )
    if result.rowcount:
        return ResolveOutcome.RESOLVED
    current = (
        await conn.execute(
            select(exposures.c.resolution).where(exposures.c.exposure_id == exposure_id)
        )
    ).one_or_none()
    if current is None:
        return ResolveOutcome.NOT_FOUND
    return ResolveOutcome.SAME if current.resolution == resolution else ResolveOutcome.CONFLICT


async def exposure_first_seen(conn: AsyncConnection, exposure_id: str) -> datetime | None:
    row = (
        await conn.execute(
            select(exposures.c.first_seen).where(exposures.c.exposure_id == exposure_id)
        )
    ).one_or_none()
    return None if row is None else row.first_seen


async def exposure_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Exposures by ``(action, state)``; served by the ``(action, state)`` index."""
    rows = await conn.execute(
        select(exposures.c.action, exposures.c.state, func.count()).group_by(
            exposures.c.action, exposures.c.state
        )
    )
    return {(action, state): count for action, state, count in rows.all()}


async def customer_count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(customers))).scalar_one())
