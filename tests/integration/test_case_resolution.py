"""Resolving a case on real SQLite and PostgreSQL: by case id or through any exposure, once,
with one audit entry; a completed reset replaces or supersedes the enrolled hash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store.access_models import AuditEntry
from exposure.store.models import Case, Customer, Exposure
from exposure.triage.resolution import (
    AlreadyResolved,
    CaseNotFound,
    CaseResolutionRequest,
    InvalidResolution,
    ResolutionRequest,
    resolve,
    resolve_case,
)
from tests.integration.test_api_support import T0, TEST_ACTOR, add_customer, add_exposure
from tests.leakgen import HASHER

CASE_ID = "11111111-2222-4333-8444-555555555555"
LATER = T0 + timedelta(days=1)


async def _case_with_exposures(engine: AsyncEngine) -> list[str]:
    await add_customer(engine, "C1")
    ids = [await add_exposure(engine, "C1", first_seen=T0 + timedelta(minutes=n)) for n in (0, 1)]
    async with engine.begin() as conn:
        await conn.execute(
            update(Customer).where(Customer.customer_id == "C1").values(password_hash="old")
        )
        await conn.execute(
            insert(Case).values(
                case_id=CASE_ID,
                customer_id="C1",
                state="open",
                action="force_reset",
                severity="critical",
                announced_action="force_reset",
                opened_at=T0,
                updated_at=T0,
                force_reset_at=T0,
            )
        )
        await conn.execute(update(Exposure).values(case_id=CASE_ID))
    return ids


async def _states(engine: AsyncEngine) -> tuple[object, list[tuple[str, str | None]], object]:
    async with engine.connect() as conn:
        case = (await conn.execute(select(Case).where(Case.case_id == CASE_ID))).one()
        exposures = (await conn.execute(select(Exposure.state, Exposure.resolved_by))).all()
        customer = (await conn.execute(select(Customer))).one()
    return case, [tuple(e) for e in exposures], customer


async def test_resolve_case_by_id_once(engine: AsyncEngine) -> None:
    await _case_with_exposures(engine)
    request = CaseResolutionRequest(
        case_id=CASE_ID, resolution="reset_completed", resolved_by="reset-svc", resolved_at=LATER
    )
    assert await resolve_case(engine, request, TEST_ACTOR) is True
    assert await resolve_case(engine, request, TEST_ACTOR) is False
    with pytest.raises(AlreadyResolved, match="case was already resolved as reset_completed"):
        await resolve_case(
            engine,
            CaseResolutionRequest(
                case_id=CASE_ID, resolution="dismissed", resolved_by="x", reason="why"
            ),
            TEST_ACTOR,
        )
    with pytest.raises(CaseNotFound):
        await resolve_case(
            engine,
            CaseResolutionRequest(
                case_id="nope", resolution="dismissed", resolved_by="x", reason="r"
            ),
            TEST_ACTOR,
        )
    case, exposures, customer = await _states(engine)
    assert (case.state, case.resolution, case.resolved_at) == ("resolved", "reset_completed", LATER)
    assert exposures == [("reset_completed", "reset-svc")] * 2
    # No new hash: the old one is superseded at the reset time.
    assert (customer.password_hash, customer.password_superseded_at) == ("old", LATER)
    async with engine.connect() as conn:
        audit = (await conn.execute(select(AuditEntry.action, AuditEntry.target))).all()
    assert [tuple(a) for a in audit] == [("case.resolved", CASE_ID)]


async def test_resolving_one_exposure_resolves_the_case_with_a_new_hash(
    engine: AsyncEngine,
) -> None:
    first, _ = await _case_with_exposures(engine)
    new_hash = HASHER.hash("a new password")
    request = ResolutionRequest(
        exposure_id=first,
        resolution="reset_completed",
        resolved_by="reset-svc",
        resolved_at=LATER,
        password_hash=new_hash,
    )
    assert new_hash not in repr(request)
    assert await resolve(engine, request, TEST_ACTOR) is True
    case, exposures, customer = await _states(engine)
    assert case.resolution == "reset_completed"
    assert exposures == [("reset_completed", "reset-svc")] * 2
    assert (customer.password_hash, customer.password_superseded_at) == (new_hash, None)
    async with engine.connect() as conn:
        details = (await conn.execute(select(AuditEntry.detail))).scalars().all()
    assert len(details) == 1 and new_hash not in str(details[0]) and CASE_ID in str(details[0])


@pytest.mark.parametrize(
    ("resolution", "password_hash", "problem"),
    [
        ("reset_completed", "5f4dcc3b5aa765d61d8327deb882cf99", "unsalted fast hash"),
        ("reset_completed", "hunter2", "not a password hash"),
        ("dismissed", "$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWX", "only"),
    ],
)
async def test_a_refused_new_hash_is_invalid_and_never_echoed(
    engine: AsyncEngine, resolution: str, password_hash: str, problem: str
) -> None:
    await _case_with_exposures(engine)
    request = CaseResolutionRequest(
        case_id=CASE_ID,
        resolution=resolution,
        resolved_by="reset-svc",
        reason="r",
        password_hash=password_hash,
    )
    with pytest.raises(InvalidResolution, match=problem) as raised:
        await resolve_case(engine, request, TEST_ACTOR)
    assert raised.value.field == "password_hash"
    assert password_hash not in str(raised.value)
    case, _, customer = await _states(engine)
    assert case.state == "open" and customer.password_hash == "old"
