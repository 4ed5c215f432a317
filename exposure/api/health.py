"""Liveness, readiness and Prometheus metrics. All open: they carry no personal data, and
``/metrics`` is scraped by Prometheus, which does not do bearer-token dances by default."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from exposure.api import keys
from exposure.api.auth import public
from exposure.api.errors import error_response
from exposure.clock import utcnow
from exposure.domain.cases import RESET_SLA
from exposure.domain.policy import Action
from exposure.errors import PepperMismatch
from exposure.metrics import REGISTRY
from exposure.store import api_queries, db, health_queries
from exposure.store.case_queries import OpenCases, open_case_counts

log = logging.getLogger("exposure.api")

READY_TIMEOUT = 5.0
# States every scrape reports, zero included, so dashboards and alerts never see gaps.
KNOWN_STATES = ("open", "reset_completed", "dismissed")
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

routes = web.RouteTableDef()


@routes.get("/healthz")
@public
async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving; never touches the database."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
@public
async def readyz(request: web.Request) -> web.Response:
    """The database answers, has this code's schema, and was created with this pepper."""
    engine = request.app[keys.ENGINE]
    settings = request.app[keys.SETTINGS]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            revision = await db.check_ready(engine, settings.pepper.reveal())
    except db.SchemaMissing:
        return _not_ready("schema_missing", "the database has no schema: run `exposure db upgrade`")
    except db.SchemaOutdated as outdated:
        return _not_ready("schema_outdated", str(outdated))
    except PepperMismatch:
        return _not_ready(
            "pepper_mismatch", "EXPOSURE_PEPPER is not the pepper this database was created with"
        )
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        log.warning("readiness: database unreachable (%s)", type(error).__name__)
        return _not_ready("database_unavailable", "the database cannot be reached")
    return web.json_response({"status": "ready", "schema_revision": revision})


def _not_ready(code: str, message: str) -> web.Response:
    return error_response(503, code, message, {"Retry-After": "10"})


class _Snapshot(Collector):
    """Database figures read once per scrape (the async read happens before collection)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


@routes.get("/metrics")
@public
async def metrics(request: web.Request) -> web.Response:
    """Process counters from :data:`exposure.metrics.REGISTRY`, then what the database holds
    now, whichever process wrote it (a CLI ingest, another replica): exposures by action and
    state, open cases by action and forced resets past the SLA, enrolled customers, the
    outbox by state with its oldest undelivered event, disabled endpoints, the corpus fold
    backlog and each connector's last success. If the database is down the process metrics
    are still served, with ``exposure_database_up 0``."""
    engine = request.app[keys.ENGINE]
    up = GaugeMetricFamily("exposure_database_up", "1 when the scrape could read the database.")
    families: list[Metric] = [up]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with engine.connect() as conn:
                counts = await api_queries.exposure_counts(conn)
                open_cases = await open_case_counts(conn, overdue_before=utcnow() - RESET_SLA)
                customers = await api_queries.customer_count(conn)
                backlog = await health_queries.delivery_backlog(conn, dead_limit=0)
                corpus = await health_queries.corpus_backlog(conn)
                runs = await health_queries.connectors(conn)
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        log.warning("metrics: database unreadable (%s)", type(error).__name__)
        up.add_metric([], 0)
    else:
        up.add_metric([], 1)
        exposures = GaugeMetricFamily(
            "exposure_exposures",
            "Exposures in the database by action and state, read at scrape time.",
            labels=["action", "state"],
        )
        series = {(a.value, s): 0 for a in Action for s in KNOWN_STATES} | counts
        for (action, state), value in sorted(series.items()):
            exposures.add_metric([action, state], value)
        enrolled = GaugeMetricFamily(
            "exposure_customers_enrolled", "Customers enrolled, read at scrape time."
        )
        enrolled.add_metric([], customers)
        families += [
            exposures,
            *_case_families(open_cases),
            enrolled,
            *_backlog_families(backlog, corpus, runs),
        ]
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_Snapshot(families))
    body = generate_latest(REGISTRY) + generate_latest(scrape)
    return web.Response(body=body, headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})


def _case_families(open_cases: OpenCases) -> list[Metric]:
    """Open cases (customers to act on) by action, and forced resets past the SLA: the
    dashboard's first cards, for alerting."""
    by_action = GaugeMetricFamily(
        "exposure_cases_open",
        "Open cases (one per customer) by action, read at scrape time.",
        labels=["action"],
    )
    for action in Action:
        by_action.add_metric([action.value], open_cases.by_action.get(action.value, 0))
    overdue = GaugeMetricFamily(
        "exposure_cases_overdue",
        "Open forced-reset cases whose reset was asked for more than 24 hours ago (the SLA).",
    )
    overdue.add_metric([], open_cases.overdue)
    return [by_action, overdue]


def _backlog_families(
    backlog: health_queries.DeliveryBacklog,
    corpus: health_queries.CorpusBacklog,
    runs: list[health_queries.ConnectorHealth],
) -> list[Metric]:
    """Gauges of work waiting, read at scrape time (counters are per process)."""
    now = utcnow()
    events = GaugeMetricFamily(
        "exposure_outbox_events",
        "Webhook events in the outbox by state (pending, failed, dead, delivered).",
        labels=["state"],
    )
    for state, count in sorted(backlog.by_state.items()):
        events.add_metric([state], count)
    oldest = GaugeMetricFamily(
        "exposure_outbox_oldest_undelivered_seconds",
        "Age of the oldest event not yet delivered (0 when none waits).",
    )
    first = backlog.oldest_undelivered
    oldest.add_metric([], 0.0 if first is None else (now - first).total_seconds())
    disabled = GaugeMetricFamily(
        "exposure_webhook_endpoints_disabled",
        "Webhook endpoints disabled by a 410 Gone (nothing is sent until re-enabled).",
    )
    disabled.add_metric([], len(backlog.disabled_endpoints))
    staged = GaugeMetricFamily(
        "exposure_corpus_staged_digests",
        "Leaked-password digests staged by ingests and not yet folded into /range.",
    )
    staged.add_metric([], corpus.digests)
    unsettled = GaugeMetricFamily(
        "exposure_corpus_unsettled_records",
        "Leaked-password digests /range serves from folded segments, not yet settled into the "
        "corpus table.",
    )
    unsettled.add_metric([], corpus.unsettled_records)
    success = GaugeMetricFamily(
        "exposure_connector_last_success_timestamp_seconds",
        "When each connector last finished a run successfully (Unix time).",
        labels=["connector"],
    )
    for run in runs:
        if run.last_success is not None and run.last_success.finished_at is not None:
            success.add_metric([run.connector], run.last_success.finished_at.timestamp())
    return [events, oldest, disabled, staged, unsettled, success]
