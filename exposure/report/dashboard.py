"""The figures of the console's dashboard: the state of things now, and the latest report.

Unlike the report, which covers a week, the dashboard shows open cases by action ("customers
to reset", "customers to notify": one per customer incident) beside open exposures by action,
the forced-reset cases open past the SLA right now (as the report counts them), each
connector's last run and webhook delivery by state. The latest report's headline figures are
read from its JSON file in ``settings.report_dir`` (in the reader's language when there is
one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.domain.cases import RESET_SLA
from exposure.report.builder import latest_report_json
from exposure.report.figures import ACTIONS, OUTBOX_STATES
from exposure.report.weeks import InvalidWeek, IsoWeek
from exposure.settings import Settings
from exposure.store import report_queries as q
from exposure.store.case_queries import open_case_counts

# The actions a case asks of the broker: a reset, or a word to the customer.
CASE_ACTIONS = ("force_reset", "notify")


@dataclass(frozen=True, slots=True, kw_only=True)
class LatestReport:
    week: IsoWeek
    lang: str
    in_progress: bool
    headline: Mapping[str, float | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardFigures:
    """What the dashboard shows, as of ``as_of``."""

    as_of: datetime
    open_by_action: Mapping[str, int]
    # Open cases by action (force_reset: customers to reset; notify: customers to notify).
    open_cases_by_action: Mapping[str, int]
    sla_breaches_now: int
    connectors: Sequence[q.ConnectorLastRun]
    outbox_by_state: Mapping[str, int]
    oldest_undelivered: datetime | None
    latest_report: LatestReport | None


def _latest_report(settings: Settings, lang: str, now: datetime) -> LatestReport | None:
    current = IsoWeek.containing(now, settings.timezone)
    path = latest_report_json(
        settings.report_dir, langs=(lang, "en" if lang == "ja" else "ja"), before=current
    )
    if path is None:
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        week = IsoWeek.parse(str(data.get("week", "")))
    except (OSError, ValueError, InvalidWeek):
        return None  # being replaced right now, or not ours: show no report rather than fail
    headline = data.get("headline", {})
    return LatestReport(
        week=week,
        lang=str(data.get("lang", "")),
        in_progress=bool(data.get("in_progress", False)),
        headline={
            str(k): v for k, v in headline.items() if v is None or isinstance(v, int | float)
        },
    )


async def dashboard_figures(
    engine: AsyncEngine, settings: Settings, *, lang: str, now: datetime | None = None
) -> DashboardFigures:
    """Query the store and the report folder for the dashboard (the report in ``lang`` when
    one was written in it)."""
    now = now or utcnow()
    async with engine.connect() as conn:
        by_action = await q.open_by_action(conn)
        open_cases = await open_case_counts(conn, overdue_before=now - RESET_SLA)
        connectors = await q.latest_connector_runs(conn)
        by_state, oldest = await q.outbox_by_state(conn)
    return DashboardFigures(
        as_of=now,
        open_by_action={a: by_action.get(a, 0) for a in ACTIONS},
        open_cases_by_action={a: open_cases.by_action.get(a, 0) for a in CASE_ACTIONS},
        sla_breaches_now=open_cases.overdue,
        connectors=connectors,
        outbox_by_state={s: by_state.get(s, 0) for s in OUTBOX_STATES},
        oldest_undelivered=oldest,
        latest_report=await asyncio.to_thread(_latest_report, settings, lang, now),
    )
