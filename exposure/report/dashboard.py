"""The read-only dashboard page: the state of things now, and the latest weekly report.

Unlike the report, which covers a closed week, the dashboard shows open exposures by action,
each connector's last run, webhook delivery by state and the forced resets open past the SLA
right now (a count only: customer ids stay in the report's SLA list and CSV). The latest
report's headline figures are read from its JSON file in ``settings.report_dir`` and linked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.report import charts, render
from exposure.report.builder import latest_report_json
from exposure.report.figures import ACTIONS, OUTBOX_STATES, SLA_MAX_AGE
from exposure.report.i18n import Locale
from exposure.settings import Settings
from exposure.store import report_queries as q


@dataclass(frozen=True, slots=True, kw_only=True)
class LatestReport:
    week: str
    href: str
    headline: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardFigures:
    """What the dashboard shows, as of ``as_of``."""

    as_of: datetime
    open_by_action: Mapping[str, int]
    sla_breaches_now: int
    connectors: Sequence[q.ConnectorLastRun]
    outbox_by_state: Mapping[str, int]
    oldest_undelivered: datetime | None
    latest_report: LatestReport | None


def _latest_report(settings: Settings, link: Callable[[str], str]) -> LatestReport | None:
    path = latest_report_json(settings.report_dir)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None  # being replaced right now, or not ours: show no report rather than fail
    return LatestReport(
        week=str(data.get("week", "")),
        href=link(path.with_suffix(".html").name),
        headline=data.get("headline", {}),
    )


async def dashboard_figures(
    engine: AsyncEngine,
    settings: Settings,
    *,
    now: datetime | None = None,
    report_link: Callable[[str], str] = str,
) -> DashboardFigures:
    """Query the store for the dashboard. ``report_link`` maps a report file name to its URL."""
    now = now or utcnow()
    async with engine.connect() as conn:
        by_action = await q.open_by_action(conn)
        breaches = await q.sla_breaches(conn, now, SLA_MAX_AGE)
        connectors = await q.latest_connector_runs(conn)
        by_state, oldest = await q.outbox_by_state(conn)
    return DashboardFigures(
        as_of=now,
        open_by_action={a: by_action.get(a, 0) for a in ACTIONS},
        sla_breaches_now=len(breaches),
        connectors=connectors,
        outbox_by_state={s: by_state.get(s, 0) for s in OUTBOX_STATES},
        oldest_undelivered=oldest,
        latest_report=await asyncio.to_thread(_latest_report, settings, report_link),
    )


async def render_dashboard(
    engine: AsyncEngine,
    settings: Settings,
    *,
    lang: str | None = None,
    now: datetime | None = None,
    report_link: Callable[[str], str] = str,
) -> str:
    """The dashboard as one self-contained HTML page (inline CSS and SVG, no script).

    ``report_link`` turns the latest report's file name (``exposure-report-2025-W20.html``)
    into the href the page links to; by default the bare name, i.e. a sibling file. The HTTP
    API passes its own route.
    """
    locale = Locale.get(lang or settings.report_lang)
    figures = await dashboard_figures(engine, settings, now=now, report_link=report_link)
    chart = charts.category_chart(
        locale, locale.t("chart.open_by_action"), figures.open_by_action, "action"
    )
    return render.render_page(
        "dashboard.html.j2",
        d=figures,
        loc=locale,
        tz=settings.timezone,
        # pygal escapes every label it is given (ElementTree), so the SVG is safe to inline.
        chart=Markup(chart),  # noqa: S704
        cards=render.HEADLINE_CARDS,
    )
