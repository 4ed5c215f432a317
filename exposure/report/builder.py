"""Building, writing and sending the weekly report: the entry points the CLI, the daemon and
the HTTP API share."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure import JsonObject
from exposure.clock import utcnow
from exposure.report import render
from exposure.report.figures import WeeklyFigures, compute_figures
from exposure.report.i18n import Locale
from exposure.report.mail import mail_configured, send_report
from exposure.report.weeks import InvalidWeek, IsoWeek, last_complete_week
from exposure.settings import Settings
from exposure.store import report_queries

log = logging.getLogger("exposure.report")

FILE_PREFIX = "exposure-report-"
# The CSV names customers: readable by the service's group, not by everyone on the host.
FILE_MODE = 0o640


@dataclass(frozen=True, slots=True)
class Report:
    """One rendered weekly report.

    ``html`` is the self-contained page, ``csv_bytes`` the week's exposures (UTF-8), ``data`` the
    figures as values and ``figures`` the same as a JSON-ready dict (the report's JSON file).
    """

    week: IsoWeek
    lang: str
    data: WeeklyFigures
    html: str
    csv_bytes: bytes

    @property
    def figures(self) -> JsonObject:
        return {"lang": self.lang, **self.data.as_json()}

    @property
    def json_bytes(self) -> bytes:
        return render.render_json(self.figures)

    @property
    def stem(self) -> str:
        """``exposure-report-2025-W20``: the name of each file without its extension."""
        return f"{FILE_PREFIX}{self.week}"


@dataclass(frozen=True, slots=True)
class ReportRun:
    """What :func:`produce_weekly_report` did: the report, the files written, whether mailed."""

    report: Report
    paths: list[Path]
    emailed: bool

    def summary(self) -> JsonObject:
        """The one-line JSON summary the CLI prints: paths and the headline figures."""
        figures = self.report.figures
        return {
            "week": figures["week"],
            "lang": self.report.lang,
            "period": figures["period"],
            "files": {path.suffix.lstrip("."): str(path) for path in self.paths},
            "headline": figures["headline"],
            "emailed": self.emailed,
        }


async def _snapshot(conn: AsyncConnection) -> None:
    # Every figure from one snapshot, so totals agree with their breakdowns while ingestion
    # carries on. (SQLite's driver runs each SELECT on its own; its figures may differ by the
    # rows committed between two queries.)
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")


async def build_report(
    engine: AsyncEngine,
    settings: Settings,
    week: IsoWeek,
    lang: str,
    *,
    now: datetime | None = None,
) -> Report:
    """Query the store and render the report for ``week`` (in ``settings.timezone``)."""
    locale = Locale.get(lang)
    tz = settings.timezone
    start, end = week.bounds(tz)
    async with engine.connect() as conn:
        await _snapshot(conn)
        figures = await compute_figures(conn, week, tz, now=now or utcnow())
        rows = [row async for row in report_queries.iter_week_exposures(conn, start, end)]
    return Report(
        week=week,
        lang=lang,
        data=figures,
        html=render.render_html(figures, locale),
        csv_bytes=render.render_csv(rows, tz),
    )


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader (the dashboard, a web server) never sees a half-written report.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """Write ``<stem>.html``, ``.csv`` and ``.json`` into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, data in (
        (".html", report.html.encode("utf-8")),
        (".csv", report.csv_bytes),
        (".json", report.json_bytes),
    ):
        path = out_dir / f"{report.stem}{suffix}"
        _write_atomically(path, data)
        paths.append(path)
    return paths


async def produce_weekly_report(
    engine: AsyncEngine,
    settings: Settings,
    *,
    week: IsoWeek | None = None,
    lang: str | None = None,
    out_dir: Path | None = None,
    email: bool | None = None,
    now: datetime | None = None,
) -> ReportRun:
    """Build, write and (optionally) mail one report; what the daemon's Monday job calls.

    Defaults: the last complete week in ``settings.timezone``, ``settings.report_lang``,
    ``settings.report_dir``; ``email=None`` mails when SMTP and recipients are configured,
    ``True`` insists (and fails when they are not), ``False`` never mails.
    """
    now = now or utcnow()
    week = week or last_complete_week(now, settings.timezone)
    report = await build_report(engine, settings, week, lang or settings.report_lang, now=now)
    # Off the event loop: the daemon serves the API and delivers webhooks meanwhile.
    paths = await asyncio.to_thread(write_report, report, out_dir or settings.report_dir)
    log.info("weekly report %s written to %s", week, paths[0].parent)
    if email is None:
        email = mail_configured(settings)
    if email:
        await send_report(settings, report.html, report.csv_bytes, str(week), lang=report.lang)
    return ReportRun(report=report, paths=paths, emailed=email)


def latest_report_json(out_dir: Path) -> Path | None:
    """The JSON file of the latest week written to ``out_dir``, if any."""
    found: list[tuple[IsoWeek, Path]] = []
    for path in out_dir.glob(f"{FILE_PREFIX}*.json"):
        try:
            found.append((IsoWeek.parse(path.stem.removeprefix(FILE_PREFIX)), path))
        except InvalidWeek:
            continue  # someone else's file in the report folder
    return max(found)[1] if found else None
