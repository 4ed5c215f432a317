"""Two writers at once on PostgreSQL: two ``exposure ingest`` processes, each on its own dump,
both carrying the same customers (each customer's leaks in both files), in small transactions
so their writes interleave. However the writes interleave, each customer ends with exactly one
open case and each case state with exactly one event, and the cases and events are those of
the same two dumps ingested one after the other (the replicas rule of
docs/decisions/cases.md)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store import db
from exposure.store.models import Case, Exposure, OutboxEvent
from tests.cli import run_cli, run_script
from tests.conftest import POSTGRES_URL, _admin, _with_database, environment, only_postgres
from tests.leakgen import BROKER, CURRENT, HASHER, HEADER, OLD

CUSTOMERS = 16
FILLER = 1500  # lines of nobody's, so each process runs long enough to overlap the other
BATCH = "6"  # events per transaction: many small ones, interleaved between the two writers


def _customer(n: int) -> tuple[str, str, str]:
    return f"P{n:02d}", f"par.{n:02d}@example.jp", f"parl{n:04d}"


def _password(n: int) -> str:
    """Even customers' current password leaks (force_reset), odd ones' retired one (notify):
    the same in both dumps, so neither dump can escalate what the other opened."""
    return CURRENT if n % 2 == 0 else OLD


def _dumps() -> tuple[str, str]:
    """Dump A: each customer as e-mail, twice; dump B: as login id, on the broker's site and
    elsewhere, customers in the opposite order (the writers meet on every customer's case from
    opposite ends)."""
    first: list[str] = [f"nobody{k}.a@example.org:Filler-{k}" for k in range(FILLER)]
    second: list[str] = [f"nobody{k}.b@example.org:Filler-{k}" for k in range(FILLER)]
    step = FILLER // CUSTOMERS
    for n in range(CUSTOMERS):
        _, email, _ = _customer(n)
        first.insert(n * step, f"{email}:{_password(n)}")
        first.insert(len(first) - n * step, f"{email.upper()}:{_password(n)}")
        m = CUSTOMERS - 1 - n
        _, _, login_m = _customer(m)
        second.insert(n * step, f"https://trade.{BROKER}/login:{login_m}:{_password(m)}")
        second.insert(
            len(second) - n * step, f"https://shop.example.com/in:{login_m}:{_password(m)}"
        )
    return "\n".join(first) + "\n", "\n".join(second) + "\n"


def _enrolment() -> str:
    phc = HASHER.hash(CURRENT)
    rows = [
        f"{cid},{email},{login},,{phc}" for cid, email, login in map(_customer, range(CUSTOMERS))
    ]
    return HEADER + "\n".join(rows) + "\n"


async def _outcome(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        cases = (await conn.execute(select(Case))).all()
        members = dict(
            (
                await conn.execute(
                    select(Exposure.case_id, func.count()).group_by(Exposure.case_id)
                )
            ).all()
        )
        events = (await conn.execute(select(OutboxEvent))).all()
    customer = {c.case_id: c.customer_id for c in cases}
    return {
        "cases": Counter(
            (c.customer_id, c.state, c.action, c.announced_action, members[c.case_id])
            for c in cases
        ),
        "events": Counter((customer[e.case_id], e.event_type) for e in events),
        "events_per_case_state": Counter((e.case_id, e.event_type) for e in events),
        "open_per_customer": Counter(c.customer_id for c in cases if c.state == "open"),
    }


def _write(tmp_path: Path) -> tuple[Path, Path]:
    first, second = _dumps()
    (tmp_path / "customers.csv").write_text(_enrolment())
    (tmp_path / "a.txt").write_text(first)
    (tmp_path / "b.txt").write_text(second)
    return tmp_path / "a.txt", tmp_path / "b.txt"


@only_postgres  # concurrent writers share PostgreSQL (SQLite serialises writes)
@pytest.mark.timeout(300)
async def test_two_concurrent_ingests_of_the_same_customers_make_one_case_each(
    database_url: str, engine: AsyncEngine, tmp_path: Path, postgres_template: str
) -> None:
    first, second = _write(tmp_path)

    # The reference: the two dumps one after the other, in a database of its own.
    reference_name = f"exposure_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{reference_name}" TEMPLATE "{postgres_template}"')
    assert POSTGRES_URL
    reference_url = _with_database(POSTGRES_URL, reference_name)
    try:
        env = environment(
            reference_url, EXPOSURE_BROKER_DOMAINS=BROKER, **{"EXPOSURE_INGEST_BATCH_EVENTS": BATCH}
        )
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        for dump in (first, second):
            run_cli("ingest", str(dump), "--source", dump.stem, env=env, cwd=tmp_path)
        async with db.open_engine(reference_url) as reference_engine:
            sequential = await _outcome(reference_engine)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{reference_name}" WITH (FORCE)')

    env = environment(
        database_url, EXPOSURE_BROKER_DOMAINS=BROKER, **{"EXPOSURE_INGEST_BATCH_EVENTS": BATCH}
    )
    run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)

    def ingest(dump: Path) -> tuple[float, float]:
        started = time.monotonic()
        run_script("ingest", str(dump), "--source", dump.stem, env=env, cwd=tmp_path)
        return started, time.monotonic()

    # Two processes at once, each its own connection pool and transactions.
    spans = await asyncio.gather(*(asyncio.to_thread(ingest, d) for d in (first, second)))
    (start_a, end_a), (start_b, end_b) = spans
    assert start_a < end_b and start_b < end_a  # they ran at the same time
    concurrent = await _outcome(engine)

    customers = {_customer(n)[0] for n in range(CUSTOMERS)}
    for outcome in (sequential, concurrent):
        assert outcome["open_per_customer"] == Counter(customers)
        assert set(outcome["events_per_case_state"].values()) == {1}
        assert sum(outcome["cases"].values()) == CUSTOMERS
        # Every customer's case holds both dumps' exposures: e-mail, broker-site and
        # other-site login id.
        assert {members for *_, members in outcome["cases"]} == {3}
    assert concurrent["cases"] == sequential["cases"]
    assert concurrent["events"] == sequential["events"]
    assert sequential["events"] == Counter(
        {(cid, "exposure.force_reset") for cid in customers if int(cid[1:]) % 2 == 0}
        | {(cid, "exposure.notify") for cid in customers if int(cid[1:]) % 2 == 1}
    )
