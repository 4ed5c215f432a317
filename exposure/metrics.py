"""Prometheus metrics, defined once for every part of the process that counts something.

Counters count this process's own work; figures that live in the database (exposures by
action) are read at scrape time by a collector the API registers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INGEST_LINES = Counter("exposure_ingest_lines", "Dump lines read by ingestion.", registry=REGISTRY)
INGEST_RECORDS = Counter(
    "exposure_ingest_records", "Leak records parsed by ingestion.", registry=REGISTRY
)
DELIVERIES = Counter(
    "exposure_deliveries",
    "Webhook delivery attempts by outcome (delivered, retry, dead, disabled).",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "exposure_delivery_latency_seconds",
    "Time from sending a webhook to its response.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CONNECTOR_RUNS = Counter(
    "exposure_connector_runs",
    "Connector runs by connector and outcome (success, failed, skipped).",
    ["connector", "outcome"],
    registry=REGISTRY,
)
