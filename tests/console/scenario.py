"""A broker's week as the console shows it, written straight to the store, relative to now.

Times are relative to the real clock because the console measures SLA clocks to now. Every
row that matters to an assertion is named (``KEYS``); a bulk of low-priority exposures makes
the worklist span two pages.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.domain import policy
from exposure.domain.policy import PasswordStatus
from exposure.store.models import (
    Case,
    ConnectorRun,
    CorpusPending,
    Customer,
    CustomerIdentifier,
    DeliveryAttempt,
    Exposure,
    IngestRun,
    OutboxEvent,
    Sighting,
)

BULK = 55


@dataclass(frozen=True)
class Row:
    key: str
    customer: str
    action: str
    severity: str
    status: str
    leak: str
    hours_ago: float
    site: str = ""
    source: str = "darkweb-feed"
    state: str = "open"
    resolved_hours_ago: float | None = None
    kind: str = "email"
    hint: str = "ta***@example.jp"


ROWS = [
    Row("overdue", "C-1001", "force_reset", "critical", "live", "combo", 30),
    Row("due", "C-1002", "force_reset", "high", "unknown", "stealer_log", 5,
        site="trade.mirai-sec.co.jp", source="hibp", hint="090-****-5678", kind="phone"),
    Row("cookie", "C-1003", "force_reset", "high", "absent", "session_cookie", 50,
        site="mirai-sec.co.jp", source="stealer-drop"),
    Row("notify", "C-1004", "notify", "medium", "stale", "ulp", 2, site="example.com"),
    Row("dismissed", "C-1005", "notify", "medium", "unknown", "combo", 72, state="dismissed",
        resolved_hours_ago=60),
    Row("reset", "C-1006", "force_reset", "critical", "live", "combo", 26,
        state="reset_completed", resolved_hours_ago=20),
    Row("none", "C-1007", "none", "low", "absent", "feed_alert", 10, source="hibp"),
]  # fmt: skip


def exposure_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"exposure:{key}"))


def case_id(customer: str) -> str:
    """The case of a customer's incident in the scenario (one per customer)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"case:{customer}"))


def event_id(key: str, n: int = 0) -> str:
    return f"msg_{key}_{n}"


def _exposure(row: Row, now: datetime, n: int) -> dict[str, Any]:
    first_seen = now - timedelta(hours=row.hours_ago)
    resolved = (
        None if row.resolved_hours_ago is None else now - timedelta(hours=row.resolved_hours_ago)
    )
    return {
        "exposure_id": exposure_id(row.key),
        "customer_id": row.customer,
        "identifier_kind": row.kind,
        "password_fp": hashlib.sha256(row.key.encode()).digest(),
        "site_domain": row.site,
        "match_strength": "strict",
        "password_status": row.status,
        "action": row.action,
        "severity": row.severity,
        "leak_type": row.leak,
        "has_pin": n == 0,
        "reason": policy._reason(
            PasswordStatus(row.status),
            bool(row.site) and "mirai-sec" in row.site,
            row.leak == "session_cookie",
            False,
            n == 0,
        ),
        "recommended_actions": json.dumps(
            ["reset_password", "revoke_sessions", "review_login_history"]
            if row.action == "force_reset"
            else ["notify_customer"]
        ),
        "source": row.source,
        "identifier_hint": row.hint,
        "state": row.state,
        "first_seen": first_seen,
        "last_seen": first_seen + timedelta(hours=1),
        "occurrences": 3 if row.key == "overdue" else 1,
        "decided_at": first_seen,
        "resolution": None if row.state == "open" else row.state,
        "resolved_at": resolved,
        "resolved_by": None if resolved is None else "reset-service",
    }


def _case(exposure: dict[str, Any]) -> dict[str, Any]:
    """The case of a scenario customer's one exposure, as the ingest writer records it."""
    resolved = exposure["resolution"] is not None
    forced = exposure["action"] == "force_reset"
    return {
        "case_id": case_id(exposure["customer_id"]),
        "customer_id": exposure["customer_id"],
        "state": "resolved" if resolved else "open",
        "action": exposure["action"],
        "severity": exposure["severity"],
        "announced_action": None if exposure["action"] == "none" else exposure["action"],
        "opened_at": exposure["first_seen"],
        "updated_at": exposure["first_seen"],
        "force_reset_at": exposure["first_seen"] if forced else None,
        "resolution": exposure["resolution"],
        "resolved_at": exposure["resolved_at"],
        "resolved_by": exposure["resolved_by"],
    }


JOINED = Row("overdue_login", "C-1001", "force_reset", "critical", "live", "ulp", 20,
             site="trade.mirai-sec.co.jp", kind="login_id", hint="KL****01")  # fmt: skip


async def add_joined_exposure(engine: AsyncEngine, now: datetime) -> str:
    """A second exposure of C-1001 (its login id, on the broker's site) that joined the open
    case of the ``overdue`` exposure: the case now covers two."""
    async with engine.begin() as conn:
        await conn.execute(
            insert(Exposure).values(**_exposure(JOINED, now, 1), case_id=case_id("C-1001"))
        )
    return exposure_id(JOINED.key)


def bulk_rows() -> list[Row]:
    return [
        Row(f"bulk{n:02d}", f"C-2{n:03d}", "notify", "medium", "stale", "combo", 100 + n,
            source="bulk-list")
        for n in range(BULK)
    ]  # fmt: skip


async def seed(engine: AsyncEngine, now: datetime | None = None) -> datetime:
    """Write the scenario; return the ``now`` it is relative to."""
    now = now or utcnow()
    rows = [*ROWS, *bulk_rows()]
    async with engine.begin() as conn:
        customers = sorted({r.customer for r in rows})
        await conn.execute(
            insert(Customer),
            [{"customer_id": c, "created_at": now, "updated_at": now} for c in customers],
        )
        await conn.execute(
            insert(CustomerIdentifier),
            [
                {
                    "fingerprint": hashlib.sha256(f"{c}:{kind}".encode()).digest(),
                    "customer_id": c,
                    "strength": "strict",
                    "kind": kind,
                    "scheme": 1,
                    "hint": hint,
                }
                for c in customers[:6]
                for kind, hint in (("email", "ta***@example.jp"), ("phone", "+81*******78"))
            ],
        )
        await conn.execute(
            insert(Exposure),
            [{**_exposure(r, now, n), "case_id": case_id(r.customer)} for n, r in enumerate(rows)],
        )
        await conn.execute(insert(Case), [_case(_exposure(r, now, 0)) for r in rows])
        run_id = (
            await conn.execute(
                insert(IngestRun)
                .values(
                    source="darkweb-feed",
                    input_name="combo-2025-05.txt",
                    content_key="a" * 64,
                    state="completed",
                    feeds_corpus=True,
                    checkpoint=3,
                    stats=json.dumps(
                        {
                            "lines": 120_000,
                            "records": 119_200,
                            "matched_records": 4,
                            "rejected": {"no_delimiter": 700, "comment": 90, "html": 10},
                        }
                    ),
                    started_at=now - timedelta(hours=31),
                    updated_at=now - timedelta(hours=30),
                    finished_at=now - timedelta(hours=30),
                )
                .returning(IngestRun.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(IngestRun).values(
                source="stealer-drop",
                input_name="logs/victim-pc-17.zip",
                content_key="b" * 64,
                state="running",
                feeds_corpus=True,
                checkpoint=1,
                stats=json.dumps({"lines": 5_000, "records": 4_100, "matched_records": 1}),
                started_at=now - timedelta(minutes=20),
                updated_at=now - timedelta(minutes=5),
            )
        )
        await conn.execute(
            insert(Sighting),
            [
                {
                    "exposure_id": exposure_id("overdue"),
                    "run_id": run_id,
                    "ordinal": n,
                    "source": "darkweb-feed",
                    "file": file,
                    "line_no": line,
                    "leak_type": "combo",
                    "seen_at": now - timedelta(hours=hours),
                }
                for n, (file, line, hours) in enumerate(
                    [
                        ("combo-2025-05.txt", 1042, 30),
                        ("combo-2025-05.txt", 1042, 12),
                        ("archive/jp-brokers.txt", 77, 29),
                    ]
                )
            ],
        )
        await _events(conn, now)
        await conn.execute(
            insert(ConnectorRun),
            [
                {"connector": "folder", "started_at": now - timedelta(minutes=3),
                 "finished_at": now - timedelta(minutes=3), "outcome": "success", "pages": 1,
                 "records": 12, "matched": 1, "error_class": None, "error": None},
                {"connector": "hibp", "started_at": now - timedelta(hours=2),
                 "finished_at": now - timedelta(hours=2), "outcome": "failed", "pages": 0,
                 "records": 0, "matched": 0, "error_class": "retriable",
                 "error": "HTTP 503 from https://haveibeenpwned.com/api/v3 (retry later)"},
                {"connector": "hibp", "started_at": now - timedelta(hours=26),
                 "finished_at": now - timedelta(hours=26), "outcome": "success", "pages": 3,
                 "records": 40, "matched": 2, "error_class": None, "error": None},
            ],
        )  # fmt: skip
        await conn.execute(
            insert(CorpusPending).values(
                digests=b"\x01" * 20 * 3, digest_count=3, staged_at=now - timedelta(seconds=4)
            )
        )
    return now


async def _events(conn: Any, now: datetime) -> None:
    """A dead event with three attempts, a delivered one, a failed one with its retry."""
    specs = [
        ("overdue", "exposure.force_reset", "dead", 30,
         [("retry", 500), ("retry", 502), ("dead", 503)]),
        ("due", "exposure.force_reset", "delivered", 5, [("delivered", 204)]),
        ("cookie", "exposure.force_reset", "failed", 50, [("retry", None)]),
        ("notify", "exposure.notify", "delivered", 2, [("delivered", 200)]),
    ]  # fmt: skip
    for key, kind, state, hours, attempts in specs:
        created = now - timedelta(hours=hours)
        outbox_id = (
            await conn.execute(
                insert(OutboxEvent)
                .values(
                    event_id=event_id(key),
                    exposure_id=exposure_id(key),
                    case_id=case_id(next(r.customer for r in ROWS if r.key == key)),
                    event_type=kind,
                    payload="{}",
                    state=state,
                    attempts=len(attempts),
                    created_at=created,
                    next_attempt_at=created + timedelta(minutes=30),
                    delivered_at=created if state == "delivered" else None,
                    last_status=attempts[-1][1],
                    last_error=None if state == "delivered" else "receiver answered 503",
                )
                .returning(OutboxEvent.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(DeliveryAttempt),
            [
                {
                    "outbox_id": outbox_id,
                    "attempt": n + 1,
                    "attempted_at": created + timedelta(minutes=n * 30),
                    "status_code": status,
                    "latency_ms": 41.5 + n,
                    "outcome": outcome,
                    "error": None
                    if outcome == "delivered"
                    else (f"HTTP {status}" if status else "connection refused"),
                }
                for n, (outcome, status) in enumerate(attempts)
            ],
        )
