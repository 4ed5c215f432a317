"""Turning figures into the report's three files: HTML (Jinja2), CSV and JSON.

The HTML is one self-contained file: inline CSS, inline SVG charts, no script, no font, image
or link fetched from anywhere, so it reads the same offline, printed or in a mail client.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from exposure.report import charts
from exposure.report.figures import WeeklyFigures
from exposure.report.i18n import Locale
from exposure.report.weeks import IsoWeek
from exposure.store.report_queries import WeekExposure

CSV_COLUMNS = (
    "exposure_id",
    "customer_id",
    "action",
    "password_status",
    "state",
    "leak_type",
    "source",
    "first_seen",
    "resolved_at",
    # Added after the first release: at the end, so column positions others rely on stay.
    "site_domain",
    "severity",
    "identifier_kind",
)

# (headline field, how it is formatted, which direction is good news)
HEADLINE_CARDS = (
    ("new_exposures", "count", "down"),
    ("customers_affected", "customers", "down"),
    ("live_credentials", "count", "down"),
    ("customers_to_reset", "customers", "down"),
    ("customers_to_reset_open", "customers", "down"),
    ("customers_to_reset_resolved", "customers", "up"),
    ("resets_requested", "count", "neutral"),
    ("resets_confirmed", "count", "up"),
    ("median_hours_to_reset", "hours", "down"),
    ("p90_hours_to_reset", "hours", "down"),
    ("sla_breaches", "count", "down"),
    ("undelivered_events", "count", "down"),
)


@cache
def environment() -> Environment:
    """The Jinja2 environment: autoescaping on, and undefined names fail loudly."""
    return Environment(
        loader=PackageLoader("exposure.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(template: str, **context: Any) -> str:
    """Render one of the package's templates."""
    return environment().get_template(template).render(**context)


def trend_direction(delta: float | None, good: str) -> str:
    """CSS class for a week-over-week change: better, worse or flat."""
    if delta is None or delta == 0 or good == "neutral":
        return "flat"
    return "better" if (delta > 0) == (good == "up") else "worse"


def render_html(figures: WeeklyFigures, locale: Locale) -> str:
    """The report page for ``figures`` in ``locale``'s language."""
    svg = {
        "by_action": charts.category_chart(
            locale, locale.t("chart.by_action"), figures.by_action, "action"
        ),
        "by_password_status": charts.category_chart(
            locale,
            locale.t("chart.by_password_status"),
            figures.by_password_status,
            "password_status",
        ),
        "by_leak_type": charts.category_chart(
            locale, locale.t("chart.by_leak_type"), figures.by_leak_type, "leak_type"
        ),
        "trend": charts.trend_chart(locale, figures.trend),
    }
    tz = ZoneInfo(figures.timezone)
    return render_page(
        "report.html.j2",
        f=figures,
        loc=locale,
        tz=tz,
        # pygal builds the SVG with ElementTree, which escapes every label it is given.
        charts={name: Markup(text) for name, text in svg.items()},  # noqa: S704
        cards=HEADLINE_CARDS,
        changes=figures.changes(),
        direction=trend_direction,
        total_new=figures.headline.new_exposures,
        current_week=str(IsoWeek.containing(figures.generated_at, tz)),
    )


def spreadsheet_safe(value: str) -> str:
    """Neutralise a cell that a spreadsheet would run as a formula (CSV injection): customer
    ids and source names come from outside, and this file is opened in Excel."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render_csv(rows: Iterable[WeekExposure], tz: ZoneInfo) -> bytes:
    """One row per exposure first seen in the week; times in ISO 8601 with the zone's offset."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.exposure_id,
                spreadsheet_safe(row.customer_id),
                row.action,
                row.password_status,
                row.state,
                row.leak_type,
                spreadsheet_safe(row.source),
                row.first_seen.astimezone(tz).isoformat(timespec="seconds"),
                ""
                if row.resolved_at is None
                else row.resolved_at.astimezone(tz).isoformat(timespec="seconds"),
                row.site_domain,
                row.severity,
                row.identifier_kind,
            ]
        )
    return buffer.getvalue().encode("utf-8")


def render_json(figures: Mapping[str, Any]) -> bytes:
    """The figures as pretty-printed UTF-8 JSON (Japanese kept readable, not escaped)."""
    return (json.dumps(figures, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
