"""The console's read-only pages: dashboard, worklist, reports and health."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from aiohttp import web
from markupsafe import Markup

from exposure.api import keys
from exposure.api.auth import public, requires
from exposure.api.scopes import Scope
from exposure.clock import utcnow
from exposure.console.filters import ANY, PAGE_SIZE, STATES, worklist_query
from exposure.console.guard import see_other
from exposure.console.render import query_with, render
from exposure.console.routing import browser_only, locale_of, routes
from exposure.domain.cases import RESET_SLA
from exposure.domain.policy import Action
from exposure.report import charts
from exposure.report.builder import KINDS, ReportFile, list_reports
from exposure.report.dashboard import dashboard_figures
from exposure.report.figures import LEAK_TYPES
from exposure.report.render import HEADLINE_CARDS
from exposure.report.weeks import IsoWeek
from exposure.store import health_queries, worklist
from exposure.store.worklist import WorklistSort

# Seconds between reloads of the pages that show the state of things now (no script: a
# <meta http-equiv="refresh">); the worklist and forms never reload under someone's hands.
REFRESH_SECONDS = 60


@routes.get("/")
@public
@browser_only
async def home(request: web.Request) -> web.Response:
    """The console's front door: the dashboard (which sends a visitor to sign in first)."""
    return see_other("/dashboard")


@routes.get("/dashboard")
@requires(Scope.READ, page=True)
async def dashboard(request: web.Request) -> web.Response:
    """Open exposures, forced resets past the SLA now, connectors, delivery, latest report."""
    engine, settings = request.app[keys.ENGINE], request.app[keys.SETTINGS]
    loc = locale_of(request)
    figures = await dashboard_figures(engine, settings, lang=loc.lang)
    chart = charts.category_chart(
        loc, loc.t("chart.open_by_action"), figures.open_by_action, "action"
    )
    return render(
        request,
        "dashboard.html.j2",
        nav="dashboard",
        d=figures,
        # pygal escapes every label it is given (ElementTree), so the SVG is safe to inline.
        chart=Markup(chart),  # noqa: S704
        cards=HEADLINE_CARDS,
        refresh=REFRESH_SECONDS,
    )


@routes.get("/worklist")
@requires(Scope.READ, page=True)
@browser_only
async def worklist_page(request: web.Request) -> web.Response:
    """Open exposures most urgent first, filtered and paged."""
    engine, settings = request.app[keys.ENGINE], request.app[keys.SETTINGS]
    async with engine.connect() as conn:
        sources = await worklist.sources(conn)
        query = worklist_query(request.query, settings.timezone)
        page = await worklist.worklist_page(
            conn, query.where, offset=(query.page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
    return render(
        request,
        "worklist.html.j2",
        nav="worklist",
        q=query,
        rows=page,
        # The chosen source stays selectable even when no ingest run names it any more.
        sources=sorted({*sources, *([query.where.source] if query.where.source else [])}),
        actions=[a.value for a in Action],
        states=(*STATES, ANY),
        leak_types=LEAK_TYPES,
        sorts=[s.value for s in WorklistSort],
        link=lambda **changes: query_with(request, **changes),
        sla=RESET_SLA,
    )


@routes.get("/reports")
@requires(Scope.READ, page=True)
@browser_only
async def reports_index(request: web.Request) -> web.Response:
    """Every weekly report written, newest first, with its languages and formats."""
    settings = request.app[keys.SETTINGS]
    files = await asyncio.to_thread(list_reports, settings.report_dir)
    by_week: dict[IsoWeek, dict[str, list[ReportFile]]] = defaultdict(lambda: defaultdict(list))
    for found in files:
        by_week[found.week][found.lang].append(found)
    weeks = [
        (
            week,
            {
                lang: [k for k in KINDS if k in {f.kind for f in kinds}]
                for lang, kinds in langs.items()
            },
        )
        for week, langs in sorted(by_week.items(), reverse=True)
    ]
    current = IsoWeek.containing(utcnow(), settings.timezone)
    return render(
        request,
        "reports.html.j2",
        nav="reports",
        weeks=weeks,
        current_week=current,
        last_week=current.shift(-1),
        schedule=settings.report_schedule,
    )


@routes.get("/health")
@requires(Scope.READ, page=True)
@browser_only
async def health(request: web.Request) -> web.Response:
    """Connectors, the delivery backlog and dead events, the corpus fold backlog, ingests."""
    engine = request.app[keys.ENGINE]
    async with engine.connect() as conn:
        connectors = await health_queries.connectors(conn)
        delivery = await health_queries.delivery_backlog(conn)
        corpus = await health_queries.corpus_backlog(conn)
        ingests = await health_queries.recent_ingests(conn)
    return render(
        request,
        "health.html.j2",
        nav="health",
        connectors=connectors,
        delivery=delivery,
        corpus=corpus,
        ingests=ingests,
        refresh=REFRESH_SECONDS,
    )
