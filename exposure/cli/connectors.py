"""``exposure connectors list | status | run NAME``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from exposure import JsonObject
from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.errors import ConfigurationError
from exposure.settings import Settings, load_settings

if TYPE_CHECKING:
    from connectors.registry import ConnectorClass
    from exposure.ingest.results import ConnectorOutcome


@main.group("connectors")
def connectors_group() -> None:
    """Feed connectors: what is installed, how they fare, run one now."""


@connectors_group.command("list")
@handle_errors
def list_command() -> None:
    """Installed connectors: enabled?, schedule, configured?, the variables each reads."""
    from connectors.registry import load_registry

    settings = load_settings()
    emit({"connectors": [_describe(cls, settings) for cls in load_registry()]})


def _describe(cls: ConnectorClass, settings: Settings) -> JsonObject:
    problem = None
    schedule = cls.default_schedule
    try:
        schedule = cls.schedule(settings.environ).text
        cls.settings_type.from_environ(settings.environ)
    except ConfigurationError as error:
        problem = str(error)
    return {
        "name": cls.name,
        "description": cls.description,
        "enabled": cls.name in settings.connectors,
        "schedule": schedule,
        "configured": problem is None,
        "problem": problem,
        "variables": [
            {
                "name": variable.name,
                "required": variable.required,
                "default": variable.default,
                "secret": variable.secret,
                "set": bool(settings.environ.get(variable.name, "").strip()),
                "help": variable.help,
            }
            for variable in cls.variables()
        ],
    }


@connectors_group.command("status")
@handle_errors
def status_command() -> None:
    """Last success and last failure (with its error) of each connector, and run counts."""
    from connectors.registry import load_registry
    from exposure.ingest.connector_runner import connector_status

    async def go(settings: Settings) -> None:
        names = load_registry().names()
        async with ready_engine(settings) as engine:
            report = await connector_status(engine, names)
        emit({"connectors": [status.as_json() for status in report]})

    run(go)


@connectors_group.command("run")
@click.argument("name")
@click.option(
    "--once",
    is_flag=True,
    default=True,
    help="One run now (the default; the daemon schedules the repeats).",
)
@handle_errors
def run_command(name: str, once: bool) -> None:
    """Run connector NAME now and print its summary; exit 1 if the run failed, was skipped or
    left items out (for the drop folder: entries moved to failed/), 2 if it failed fatally."""
    import aiohttp

    from connectors.registry import load_registry
    from exposure.ingest.connector_runner import run_connector
    from exposure.ingest.pipeline import Ingestor
    from exposure.ingest.results import RunSkipped
    from exposure.passwords.verifier import PasswordVerifier

    # The CLI's own session: downloads may be large, so no total timeout, only stalls count.
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=300)

    async def go(settings: Settings) -> ConnectorOutcome:
        registry = load_registry()
        registry.get(name)  # an unknown name fails before touching anything
        async with ready_engine(settings) as engine:
            index = await Ingestor.load_index(engine)
            async with (
                PasswordVerifier() as verifier,
                aiohttp.ClientSession(timeout=timeout) as session,
            ):
                ingestor = Ingestor(engine, settings, index, verifier)
                return await run_connector(
                    engine, settings, session, ingestor, name, once=once, registry=registry
                )

    result = run(go)
    emit(result.as_json())
    if isinstance(result, RunSkipped):
        click.echo(f"error: {result.reason}", err=True)
        sys.exit(1)
    if result.outcome == "failed":
        click.echo(f"error: {result.error}", err=True)
        sys.exit(2 if result.error_class == "fatal" else 1)
    if result.skipped:
        # Stored what it could, but some items or inputs could not be (for the drop folder:
        # entries moved to failed/ with their reasons): not a clean run, for cron's sake.
        click.echo(f"error: connector {name}: {result.error}", err=True)
        sys.exit(1)
