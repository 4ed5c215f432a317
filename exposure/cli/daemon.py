"""``exposure run`` (the daemon) and ``exposure demo``."""

from __future__ import annotations

import asyncio

import click

from exposure.cli.app import emit, handle_errors, main
from exposure.logs import configure_logging
from exposure.runtime.threads import worker_threads
from exposure.settings import load_settings


@main.command("run")
@handle_errors
def run_command() -> None:
    """The daemon: scheduled connectors, webhook delivery, weekly report and the HTTP API.

    Stops cleanly on SIGTERM or SIGINT. Logs are JSON lines on stderr
    (EXPOSURE_LOG_FORMAT=text for plain text).
    """
    from exposure.runtime.daemon import (
        run_daemon,  # see exposure.cli: commands import what they run
    )

    settings = load_settings()
    verbose = bool(click.get_current_context().find_root().params.get("verbose"))
    configure_logging(json_lines=settings.log_format == "json", verbose=verbose)
    asyncio.run(run_daemon(settings))


@main.command("demo")
@handle_errors
def demo_command() -> None:
    """See the whole flow on an invented broker in a throw-away database (a few seconds)."""
    from exposure.runtime.demo import run_demo

    def say(text: str) -> None:
        click.echo(text, err=True)

    with worker_threads():
        emit(asyncio.run(run_demo(say)).as_json())
