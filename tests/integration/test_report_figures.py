"""Weekly report figures on real SQLite and PostgreSQL, checked against SQL written here.

The seed spans several weeks around 2025-W20 (Mon 12 May - Sun 18 May 2025, Asia/Tokyo) with
every action, password status, state and leak type, confirmed resets with known detection-to-
reset times, connector and ingest runs, and outbox rows and delivery attempts in every state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.report import IsoWeek, build_report
from exposure.settings import Settings
from exposure.store.models import (
    Case,
    ConnectorRun,
    Customer,
    DeliveryAttempt,
    Exposure,
    IngestRun,
    OutboxEvent,
)

TOKYO = ZoneInfo("Asia/Tokyo")
WEEK = IsoWeek(2025, 20)
HINT = "ta***@example.jp"  # stored for display; must never reach a report


def jst(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=TOKYO)


@dataclass(frozen=True)
class Spec:
    key: str
    action: str
    status: str
    leak: str
    first_seen: datetime
    site: str = ""
    source: str = "darkweb"
    state: str = "open"
    resolution: str | None = None
    resolved_at: datetime | None = None


# Confirmed force_reset durations in W20: 2, 5, 10, 25 and 96 hours.
SPECS = [
    Spec("w20-a", "force_reset", "live", "combo", jst(12, 10), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(12, 12)),
    Spec("w20-b", "force_reset", "live", "ulp", jst(13, 9), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(13, 14)),
    Spec("w20-c", "force_reset", "unknown", "stealer_log", jst(13, 20), site="mirai-sec.co.jp",
         state="reset_completed", resolution="reset_completed", resolved_at=jst(14, 6)),
    Spec("w20-d", "force_reset", "absent", "session_cookie", jst(14, 8),
         site="trade.sec.example"),  # open: SLA breach
    # Sunday 23:30 JST is still W20 (14:30 UTC); open for only 30 minutes at the week's end.
    Spec("w20-sun", "force_reset", "live", "combo", jst(18, 23, 30)),
    # Monday 08:59 JST is Sunday 23:59 UTC: W20 in Tokyo, W19 by UTC.
    Spec("w20-mon", "notify", "stale", "breach_record", jst(12, 8, 59)),
    Spec("w20-dis", "notify", "unknown", "feed_alert", jst(16, 10), state="dismissed",
         resolution="dismissed", resolved_at=jst(17, 10)),
    Spec("w20-none", "none", "absent", "combo", jst(16, 11), source="hibp"),
    Spec("w20-st2", "notify", "stale", "stealer_log", jst(17, 9), site="mirai-sec.co.jp"),
    Spec("w20-late", "force_reset", "live", "combo", jst(15, 10), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(20, 10)),  # open when W20 ended: breach
    Spec("w20-25h", "force_reset", "unknown", "ulp", jst(16, 8), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(17, 9)),
    # A notify exposure reset by the customer is not a confirmed *forced* reset.
    Spec("w20-nreset", "notify", "unknown", "combo", jst(14, 9), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(15, 9)),
    # Previous week (W19).
    Spec("w19-96h", "force_reset", "live", "combo", jst(8, 10), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(12, 10)),
    Spec("w19-open", "force_reset", "live", "ulp", jst(9, 10)),  # breach in W19 and W20
    Spec("w19-esc", "force_reset", "unknown", "combo", jst(9, 12)),  # escalated during W20
    Spec("w19-sun", "notify", "stale", "combo", jst(11, 23, 59)),  # Sunday 23:59 JST: W19
    Spec("w19-reset", "force_reset", "live", "combo", jst(6, 9), state="reset_completed",
         resolution="reset_completed", resolved_at=jst(7, 9)),
    # Monday 00:30 JST is W21 even though it is still Sunday in UTC.
    Spec("w21-mon", "force_reset", "live", "combo", jst(19, 0, 30)),
    # Trend: W10 is within the 12 weeks ending W20 (W09..W20); W08 is not.
    Spec("w10-a", "notify", "stale", "combo", datetime(2025, 3, 4, 12, tzinfo=TOKYO)),
    Spec("w10-b", "none", "absent", "combo", datetime(2025, 3, 5, 12, tzinfo=TOKYO)),
    Spec("w08-a", "notify", "stale", "combo", datetime(2025, 2, 18, 12, tzinfo=TOKYO)),
    # Old exposure, dismissed long ago: never a breach.
    Spec("w10-dis", "force_reset", "live", "combo", datetime(2025, 3, 4, 13, tzinfo=TOKYO),
         state="dismissed", resolution="dismissed", resolved_at=jst(1, 9, month=4)),
]  # fmt: skip

# (exposure key, event type, created, state, delivered_at)
EVENTS = [
    ("w20-a", "exposure.force_reset", jst(12, 10), "delivered", jst(12, 10, 1)),
    ("w20-b", "exposure.force_reset", jst(13, 9), "delivered", jst(13, 9, 1)),
    ("w20-c", "exposure.force_reset", jst(13, 20), "failed", None),
    ("w20-d", "exposure.force_reset", jst(14, 8), "dead", None),
    ("w20-sun", "exposure.force_reset", jst(18, 23, 30), "pending", None),
    ("w20-late", "exposure.force_reset", jst(15, 10), "delivered", jst(15, 11)),
    ("w20-25h", "exposure.force_reset", jst(16, 8), "delivered", jst(16, 8, 5)),
    ("w20-mon", "exposure.notify", jst(12, 8, 59), "delivered", jst(12, 9)),
    ("w20-st2", "exposure.notify", jst(17, 9), "dead", None),
    ("w19-esc", "exposure.notify", jst(9, 12), "delivered", jst(9, 12, 1)),
    ("w19-esc", "exposure.force_reset", jst(14, 15), "delivered", jst(14, 15, 1)),  # escalation
    ("w19-96h", "exposure.force_reset", jst(8, 10), "delivered", jst(8, 10, 1)),
    ("w19-open", "exposure.force_reset", jst(9, 10), "failed", None),
    ("w19-reset", "exposure.force_reset", jst(6, 9), "delivered", jst(6, 9, 1)),
    ("w21-mon", "exposure.force_reset", jst(19, 0, 30), "pending", None),
]

# (event index, attempted_at, outcome)
ATTEMPTS = [
    (0, jst(12, 10, 1), "delivered"),
    (2, jst(13, 20, 1), "retry"),
    (2, jst(13, 21), "retry"),
    (3, jst(14, 8, 1), "dead"),
    (4, jst(19, 1), "retry"),  # W21
]

INGEST_RUNS: list[dict[str, Any]] = [
    {"source": "darkweb", "started_at": jst(12, 3), "state": "completed",
     "finished_at": jst(12, 4), "stats": {"lines": 1000, "records": 900, "matched_records": 7}},
    {"source": "darkweb", "started_at": jst(16, 3), "state": "running", "finished_at": None,
     "stats": {"lines": 50, "records": 40, "matched_records": 1}},
    {"source": "darkweb", "started_at": jst(5, 3), "state": "completed",
     "finished_at": jst(5, 4), "stats": {"lines": 10, "records": 10, "matched_records": 0}},
    {"source": "hibp-manual", "started_at": jst(28, 3, month=4), "state": "completed",
     "finished_at": jst(28, 4, month=4), "stats": {"lines": 5, "records": 5, "matched_records": 1}},
    {"source": "late-source", "started_at": jst(19, 3), "state": "completed",
     "finished_at": jst(19, 4), "stats": {"lines": 5, "records": 5, "matched_records": 5}},
]  # fmt: skip

CONNECTOR_RUNS: list[dict[str, Any]] = [
    {"connector": "hibp", "started_at": jst(12, 1), "finished_at": jst(12, 2),
     "outcome": "success", "records": 100, "matched": 3},
    {"connector": "hibp", "started_at": jst(13, 1), "finished_at": jst(13, 1, 5),
     "outcome": "failed", "records": 0, "matched": 0, "error_class": "retriable"},
    {"connector": "hibp", "started_at": jst(14, 1), "finished_at": jst(14, 2),
     "outcome": "success", "records": 50, "matched": 1},
    {"connector": "feed", "started_at": jst(8, 1), "finished_at": jst(8, 2),
     "outcome": "success", "records": 20, "matched": 2},
    {"connector": "feed", "started_at": jst(15, 1), "finished_at": jst(15, 1),
     "outcome": "skipped", "records": 0, "matched": 0},
    {"connector": "folder", "started_at": jst(19, 1), "finished_at": jst(19, 2),
     "outcome": "success", "records": 9, "matched": 9},
]  # fmt: skip


def exposure_id(key: str) -> str:
    return f"00000000-0000-4000-8000-{key.encode().hex()[:12]:0>12}"


def customer_id(key: str) -> str:
    return f"C-{key}"


async def seed(engine: AsyncEngine) -> None:
    """Write the whole scenario straight through SQLAlchemy Core."""
    async with engine.begin() as conn:
        now = datetime.now(UTC)
        await conn.execute(
            insert(Customer),
            [
                {"customer_id": customer_id(s.key), "created_at": now, "updated_at": now}
                for s in SPECS
            ],
        )
        await conn.execute(insert(Exposure), [_exposure_row(n, s) for n, s in enumerate(SPECS)])
        await conn.execute(insert(Case), [_case_row(s) for s in SPECS])
        outbox_ids = []
        for n, (key, event_type, created, state, delivered) in enumerate(EVENTS):
            result = await conn.execute(
                insert(OutboxEvent)
                .values(
                    event_id=f"msg_{n:04d}",
                    exposure_id=exposure_id(key),
                    event_type=event_type,
                    payload="{}",
                    state=state,
                    attempts=1,
                    created_at=created,
                    next_attempt_at=created,
                    delivered_at=delivered,
                )
                .returning(OutboxEvent.id)
            )
            outbox_ids.append(result.scalar_one())
        await conn.execute(
            insert(DeliveryAttempt),
            [
                {"outbox_id": outbox_ids[i], "attempt": n + 1, "attempted_at": at, "outcome": o}
                for n, (i, at, o) in enumerate(ATTEMPTS)
            ],
        )
        for n, run in enumerate(INGEST_RUNS):
            await conn.execute(
                insert(IngestRun).values(
                    **{**run, "stats": json.dumps(run["stats"])},
                    input_name=f"dump-{n}.txt",
                    content_key=f"{n:064x}",
                    feeds_corpus=True,
                    checkpoint=1,
                    updated_at=run["started_at"],
                )
            )
        await conn.execute(
            insert(ConnectorRun), [{"error_class": None, **r} for r in CONNECTOR_RUNS]
        )


def case_id(key: str) -> str:
    return f"00000000-0000-4000-9000-{key.encode().hex()[:12]:0>12}"


def _case_row(s: Spec) -> dict[str, Any]:
    """Each customer's one exposure is its case; its reset was asked for when the first
    force_reset event was written (w19-esc: escalated in W20), as the writer records it."""
    asked = [at for key, kind, at, *_ in EVENTS if key == s.key and kind.endswith("force_reset")]
    forced = min(asked) if asked else s.first_seen
    return {
        "case_id": case_id(s.key),
        "customer_id": customer_id(s.key),
        "state": "open" if s.resolution is None else "resolved",
        "action": s.action,
        "severity": "critical" if s.action == "force_reset" else "medium",
        "announced_action": None if s.action == "none" else s.action,
        "opened_at": s.first_seen,
        "updated_at": s.first_seen,
        "force_reset_at": forced if s.action == "force_reset" else None,
        "resolution": s.resolution,
        "resolved_at": s.resolved_at,
        "resolved_by": "reset-service" if s.resolved_at else None,
    }


def _exposure_row(n: int, s: Spec) -> dict[str, Any]:
    return {
        "exposure_id": exposure_id(s.key),
        "customer_id": customer_id(s.key),
        "case_id": case_id(s.key),
        "identifier_kind": "email",
        "password_fp": n.to_bytes(32, "big"),
        "site_domain": s.site,
        "match_strength": "strict",
        "password_status": s.status,
        "action": s.action,
        "severity": "critical" if s.action == "force_reset" else "medium",
        "leak_type": s.leak,
        "has_pin": False,
        "reason": "seeded",
        "recommended_actions": "[]",
        "source": s.source,
        "identifier_hint": HINT,
        "state": s.state,
        "first_seen": s.first_seen,
        "last_seen": s.first_seen,
        "occurrences": 1,
        "decided_at": s.first_seen,
        "resolution": s.resolution,
        "resolved_at": s.resolved_at,
        "resolved_by": "reset-service" if s.resolved_at else None,
    }


# Independent SQL: plain text, timestamps bound as each backend stores them.


def ts(conn: AsyncConnection, moment: datetime) -> Any:
    utc = moment.astimezone(UTC)
    if conn.dialect.name == "sqlite":
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f")
    return utc


async def sql(conn: AsyncConnection, query: str, **params: Any) -> list[Any]:
    bound = {k: ts(conn, v) if isinstance(v, datetime) else v for k, v in params.items()}
    return list(await conn.execute(text(query), bound))


def as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


START = datetime(2025, 5, 11, 15, tzinfo=UTC)
END = datetime(2025, 5, 18, 15, tzinfo=UTC)


async def test_week_bounds_are_tokyo_midnights() -> None:
    assert WEEK.bounds(TOKYO) == (START, END)
    assert IsoWeek.containing(jst(18, 23, 30), TOKYO) == WEEK
    assert IsoWeek.containing(jst(19, 0, 30), TOKYO) == WEEK.shift(1)
    assert IsoWeek.containing(jst(12, 8, 59), TOKYO) == WEEK
    assert IsoWeek.containing(jst(12, 8, 59).astimezone(UTC), UTC) == WEEK.shift(-1)


async def test_figures_match_independent_sql(engine: AsyncEngine, settings: Settings) -> None:
    await seed(engine)
    report = await build_report(engine, settings, WEEK, "en", now=jst(19, 8))
    f = report.figures
    head = f["headline"]
    async with engine.connect() as conn:
        new = await sql(
            conn,
            "SELECT action, password_status, leak_type, customer_id FROM exposures"
            " WHERE first_seen >= :s AND first_seen < :e",
            s=START,
            e=END,
        )
        assert head["new_exposures"] == len(new) == 12
        assert head["customers_affected"] == len({r[3] for r in new})
        assert head["live_credentials"] == sum(1 for r in new if r[1] == "live") == 4
        for column, name in ((0, "action"), (1, "password_status"), (2, "leak_type")):
            expected: dict[str, int] = {}
            for r in new:
                expected[r[column]] = expected.get(r[column], 0) + 1
            got = {k: v for k, v in f[f"new_exposures_by_{name}"].items() if v}
            assert got == expected, name
        assert f["new_exposures_by_action"] == {"force_reset": 7, "notify": 4, "none": 1}

        requested = await sql(
            conn,
            "SELECT COUNT(DISTINCT exposure_id) FROM outbox"
            " WHERE event_type = 'exposure.force_reset' AND created_at >= :s AND created_at < :e",
            s=START,
            e=END,
        )
        assert head["resets_requested"] == requested[0][0] == 8  # seven new + one escalation

        # Time to reset is per case, from the moment its action became force_reset.
        resets = await sql(
            conn,
            "SELECT force_reset_at, resolved_at FROM cases WHERE action = 'force_reset'"
            " AND resolution = 'reset_completed' AND resolved_at >= :s AND resolved_at < :e",
            s=START,
            e=END,
        )
        hours = sorted((as_utc(r[1]) - as_utc(r[0])).total_seconds() / 3600 for r in resets)
        assert hours == [2, 5, 10, 25, 96]
        assert head["resets_confirmed"] == 5
        # Customers to reset: cases asked in W20 (w19-esc escalated in it), open when it
        # ended (w20-late was reset after), and resolved in it (w19-96h among them).
        assert (
            head["customers_to_reset"],
            head["customers_to_reset_open"],
            head["customers_to_reset_resolved"],
        ) == (8, 5, 5)
        assert head["median_hours_to_reset"] == 10
        # p90 by linear interpolation: position 0.9 * 4 = 3.6 between 25 h and 96 h.
        assert head["p90_hours_to_reset"] == 67.6

        # SLA breaches are cases: open when W20 ended and asked for more than 24 h before
        # it, oldest request first (w19-esc counts from its escalation, not its detection).
        breaches = await sql(
            conn,
            "SELECT case_id, customer_id, force_reset_at FROM cases WHERE action = 'force_reset'"
            " AND force_reset_at < :cutoff AND ((state = 'open' AND resolved_at IS NULL)"
            " OR resolved_at >= :e) ORDER BY force_reset_at",
            cutoff=END - timedelta(hours=24),
            e=END,
        )
        listed = [(b["case_id"], b["customer_id"]) for b in f["sla"]["breaches"]]
        assert listed == [(r[0], r[1]) for r in breaches]
        assert [b[0] for b in listed] == [
            case_id(k) for k in ("w19-open", "w20-d", "w19-esc", "w20-late")
        ]
        assert [as_utc(b["force_reset_at"]) for b in f["sla"]["breaches"]] == [
            as_utc(r[2]) for r in breaches
        ]
        assert head["sla_breaches"] == 4
        assert f["sla"]["breaches"][0]["age_hours"] == (END - jst(9, 10)).total_seconds() / 3600
        assert f["sla"]["breaches"][2]["age_hours"] == (END - jst(14, 15)).total_seconds() / 3600

        states = await sql(
            conn,
            "SELECT state, COUNT(*) FROM outbox WHERE created_at >= :s AND created_at < :e"
            " GROUP BY state",
            s=START,
            e=END,
        )
        assert f["delivery"]["events_by_state"] == {
            "delivered": 0, "pending": 0, "failed": 0, "dead": 0, **{r[0]: r[1] for r in states}
        }  # fmt: skip
        assert f["delivery"]["events_by_state"] == {
            "delivered": 6, "pending": 1, "failed": 1, "dead": 2
        }  # fmt: skip
        assert head["undelivered_events"] == 3
        outcomes = await sql(
            conn,
            "SELECT outcome, COUNT(*) FROM delivery_attempts WHERE attempted_at >= :s"
            " AND attempted_at < :e GROUP BY outcome",
            s=START,
            e=END,
        )
        assert {k: v for k, v in f["delivery"]["attempts_by_outcome"].items() if v} == dict(
            (r[0], r[1]) for r in outcomes
        )
        assert f["delivery"]["attempts_by_outcome"]["retry"] == 2

        domains = await sql(
            conn,
            "SELECT site_domain, COUNT(*) FROM exposures WHERE first_seen >= :s AND first_seen < :e"
            " AND leak_type IN ('stealer_log', 'session_cookie') AND site_domain <> ''"
            " GROUP BY site_domain",
            s=START,
            e=END,
        )
        assert {d["site_domain"]: d["exposures"] for d in f["stealer_log_sites"]} == dict(
            (r[0], r[1]) for r in domains
        )
        assert f["stealer_log_sites"][0] == {"site_domain": "mirai-sec.co.jp", "exposures": 2}
