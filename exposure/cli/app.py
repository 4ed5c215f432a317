"""The ``exposure`` command group and what every command shares.

Summaries are one JSON object on stdout; progress and errors go to stderr. Every command reads
its configuration from the environment and ``.env``. Our own errors become a one-line message
and exit status 2 (fatal: configuration or input to fix) or 1 (the operation failed).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import wraps
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import click

from exposure import JsonObject
from exposure.errors import ExposureError, FatalError
from exposure.logs import configure_logging
from exposure.runtime.threads import worker_threads
from exposure.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("exposure")


def emit(summary: JsonObject) -> None:
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=False))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our own errors into a one-line message and a non-zero exit, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ExposureError as error:
            _fail(error)
        except Exception as error:
            # A driver's or the system's error that we can name (an unreachable database, a
            # wrong database URL, a full disk): one line too. Anything else is a bug: raised.
            ours = _explained(error)
            if ours is None:
                raise
            _fail(ours)

    return wrapper


def _fail(error: ExposureError) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(2 if isinstance(error, FatalError) else 1)


def _explained(error: BaseException) -> ExposureError | None:
    from exposure.store.failures import explain  # loads SQLAlchemy: only on the error path

    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = inner if isinstance(inner, ExposureError) else _explained(inner)
            if found is not None:
                return found
        return None
    return explain(error)


def run(coro_fn: Callable[[Settings], Awaitable[R]], settings: Settings | None = None) -> R:
    settings = settings or load_settings()
    # What is loaded by now (modules, SQLAlchemy's metadata) lives as long as the process:
    # frozen, it is left out of the collector's full passes, which a long ingest triggers
    # again and again (10M lines: 0.1 s quicker, measured).
    gc.freeze()
    # A step that opens thousands of cases allocates objects faster than the default
    # thresholds (700, 10, 10) collect them: 40,000 new cases spent 1.0 s in the collector,
    # 0.7 s of it in twelve full passes, against 0.4 s with these (same peak memory, measured).
    gc.set_threshold(10_000, 10, 10)
    with worker_threads():  # the command owns the ingest's threads, if it starts them
        return asyncio.run(coro_fn(settings))  # type: ignore[arg-type]


# The module (under exposure.cli) that registers each command, imported only when that command
# runs (or help lists them all): `exposure ingest` starts keying its inputs before SQLAlchemy
# and the pipeline have loaded, which takes 0.4 s.
COMMAND_MODULES = {
    "api": "api",
    "tokens": "api",
    "connectors": "connectors",
    "db": "customers",
    "enroll": "customers",
    "enrol": "customers",
    "customers": "customers",
    "run": "daemon",
    "demo": "daemon",
    "deliver": "deliveries",
    "deliveries": "deliveries",
    "ingest": "ingest",
    "corpus": "ingest",
    "exposures": "exposures",
    "audit": "exposures",
    "cases": "cases",
    "report": "report",
}


class _LazyGroup(click.Group):
    """A group whose commands register themselves when their module is imported, on lookup."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"exposure.cli.{COMMAND_MODULES[cmd_name]}")
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for module in sorted(set(COMMAND_MODULES.values())):
            importlib.import_module(f"exposure.cli.{module}")
        return super().list_commands(ctx)


@click.group(cls=_LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
def main(verbose: bool) -> None:
    """exposure: leaked-credential exposure monitor for online securities brokers."""
    configure_logging(json_lines=False, verbose=verbose)


@asynccontextmanager
async def ready_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The database engine, after checking the schema exists and the pepper is this database's."""
    from exposure.store import db

    async with db.open_engine(settings.database_url) as engine:
        await db.check_ready(engine, settings.pepper.reveal())
        yield engine
