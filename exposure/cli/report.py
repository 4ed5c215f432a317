"""``exposure report``: the weekly exposure report, written to files and optionally mailed."""

from __future__ import annotations

from pathlib import Path

import click

from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.settings import Settings


@main.command("report")
@click.option(
    "--week",
    help="ISO week YYYY-Www in EXPOSURE_TIMEZONE [default: last complete week]; the week in "
    "progress is reported up to now, a week that has not started is refused.",
)
@click.option(
    "--lang",
    type=click.Choice(["ja", "en"]),
    help="Report language [default: EXPOSURE_REPORT_LANG].",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: EXPOSURE_REPORT_DIR].",
)
@click.option(
    "--email",
    is_flag=True,
    help="Also mail it to EXPOSURE_REPORT_RECIPIENTS through EXPOSURE_SMTP_URL.",
)
@handle_errors
def report_command(week: str | None, lang: str | None, out_dir: Path | None, email: bool) -> None:
    """Write the weekly report as HTML, CSV and JSON; print a JSON summary."""
    from exposure.report import IsoWeek, produce_weekly_report  # jinja2, pygal: only here

    # Parsed before touching the database, so a typo fails fast with exit status 2.
    iso_week = IsoWeek.parse(week) if week else None

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            outcome = await produce_weekly_report(
                engine, settings, week=iso_week, lang=lang, out_dir=out_dir, email=email
            )
        emit(outcome.summary())
        hint = outcome.hint()
        if hint is not None:
            click.echo(hint, err=True)

    run(go)
