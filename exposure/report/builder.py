"""Building, writing and sending the weekly report: the entry points the CLI, the daemon and
the HTTP API share."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
DIR_MODE = 0o750
KINDS = ("html", "csv", "json")
# exposure-report-2025-W20.ja.html; files written before reports were kept per language have
# no language part (exposure-report-2025-W20.html) and are still listed and served.
_FILE_NAME = re.compile(
    re.escape(FILE_PREFIX)
    + r"(?P<week>\d{4}-W\d{2})(?:\.(?P<lang>ja|en))?\.(?P<kind>html|csv|json)"
)


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
        """``exposure-report-2025-W20.ja``: each file's name without its extension (one set
        of files per language, so writing one language never replaces the other)."""
        return f"{FILE_PREFIX}{self.week}.{self.lang}"


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
            "in_progress": figures["in_progress"],
            "notice": figures["notice"],
            "files": {path.suffix.lstrip("."): str(path) for path in self.paths},
            "headline": figures["headline"],
            "emailed": self.emailed,
        }

    def hint(self) -> str | None:
        """A line for the person at the terminal when the report is empty for a reason."""
        data = self.report.data
        current = IsoWeek.containing(data.generated_at, ZoneInfo(data.timezone))
        if data.notice == "no_data":
            return (
                "this report is empty: nothing has been ingested yet. After an ingest, "
                f"`exposure report --week {current}` reports the week in progress"
            )
        if data.notice == "before_data":
            return (
                f"week {data.week} ended before the monitor's first data; for the week in "
                f"progress run `exposure report --week {current}`"
            )
        return None


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
    out_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
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


@dataclass(frozen=True, slots=True, order=True)
class ReportFile:
    """One report file in the report folder; ``lang`` is empty for an older file."""

    week: IsoWeek
    lang: str
    kind: str
    path: Path


def list_reports(out_dir: Path) -> list[ReportFile]:
    """Every report file in ``out_dir``, newest week first (others' files are ignored)."""
    found = []
    for path in out_dir.glob(f"{FILE_PREFIX}*"):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            continue
        try:
            week = IsoWeek.parse(match["week"])
        except InvalidWeek:
            continue
        found.append(ReportFile(week, match["lang"] or "", match["kind"], path))
    return sorted(found, key=lambda f: (f.week, f.lang, f.kind), reverse=True)


def find_report(
    out_dir: Path, week: IsoWeek, kind: str, langs: tuple[str, ...]
) -> ReportFile | None:
    """The ``kind`` file of ``week`` in the first of ``langs`` that exists, else an older
    file without a language."""
    files = {f.lang: f for f in list_reports(out_dir) if f.week == week and f.kind == kind}
    for lang in (*langs, ""):
        if lang in files:
            return files[lang]
    return None


def latest_report_json(
    out_dir: Path, *, langs: tuple[str, ...] = ("ja", "en"), before: IsoWeek | None = None
) -> Path | None:
    """The JSON file of the latest week written to ``out_dir`` (in the first of ``langs``
    there is), ignoring weeks after ``before``: a stray report of a week that has not
    started must not pass for the latest."""
    weeks = sorted({f.week for f in list_reports(out_dir) if f.kind == "json"}, reverse=True)
    for week in weeks:
        if before is not None and week > before:
            continue
        found = find_report(out_dir, week, "json", langs)
        if found is not None:
            return found.path
    return None
