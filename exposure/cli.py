"""The ``exposure`` command line. Summaries are one JSON object on stdout; progress and errors
go to stderr. Every command reads its configuration from the environment and ``.env``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from exposure import onboarding
from exposure.dumps.formats import FORMATS
from exposure.enrolment import BadHeader, Enroller
from exposure.errors import ExposureError, FatalError
from exposure.output import progress_bar, summarise_ingest, write_exposures
from exposure.passwords import PasswordVerifier
from exposure.pipeline import Ingestor
from exposure.settings import Settings, load_settings
from exposure.store import db
from exposure.store.exposures import iter_exposures

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("exposure")


def emit(summary: dict[str, Any]) -> None:
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=False))


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our own errors into a one-line message and a non-zero exit, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FatalError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except ExposureError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)

    return wrapper


def run(coro_fn: Callable[[Settings], Awaitable[R]]) -> R:
    settings = load_settings()
    return asyncio.run(coro_fn(settings))  # type: ignore[arg-type]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
def main(verbose: bool) -> None:
    """exposure: leaked-credential exposure monitor for online securities brokers."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic)."""

    async def go(settings: Settings) -> None:
        async with db.open_engine(settings.database_url) as engine:
            await db.upgrade(engine, settings.pepper.reveal())
        emit({"upgraded": True, "database": "sqlite" if settings.is_sqlite else "postgresql"})

    run(go)


@main.command("enroll")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def enroll(file: Path) -> None:
    """Upsert customers from FILE.csv (header: customer_id,email,login_id,phone,password_hash)."""
    size = file.stat().st_size

    async def go(settings: Settings) -> None:
        enroller = Enroller(
            settings.pepper.reveal(),
            login_id_case_sensitive=settings.login_id_case_sensitive,
            phone_region=settings.phone_region,
        )
        async with db.open_engine(settings.database_url) as engine:
            await db.check_ready(engine, settings.pepper.reveal())
            try:
                with file.open(encoding="utf-8-sig", newline="") as stream:
                    summary = await onboarding.enrol_csv(engine, enroller, stream, size_hint=size)
            except UnicodeDecodeError:
                raise BadHeader(
                    "the file is not UTF-8; save it as UTF-8 (CSV UTF-8 in Excel)"
                ) from None
        emit({"file": file.name, **summary})

    run(go)


@main.group("customers")
def customers_group() -> None:
    """Enrolled customers."""


@customers_group.command("delete")
@click.argument("customer_id")
@handle_errors
def customers_delete(customer_id: str) -> None:
    """Offboard CUSTOMER_ID: remove the customer and every fingerprint."""

    async def go(settings: Settings) -> None:
        async with db.open_engine(settings.database_url) as engine:
            await db.check_ready(engine, settings.pepper.reveal())
            deleted = await onboarding.offboard(engine, customer_id)
        emit({"customer_id": customer_id, "deleted": deleted})
        if not deleted:
            click.echo(f"no customer {customer_id!r} was enrolled", err=True)
            sys.exit(1)

    run(go)


FORMAT_CHOICES = click.Choice(sorted(FORMATS))


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", default="manual", show_default=True, help="Name recorded as the source.")
@click.option("--format", "format_override", type=FORMAT_CHOICES, help="Skip format detection.")
@handle_errors
def ingest(paths: tuple[Path, ...], source: str, format_override: str | None) -> None:
    """Ingest leaked dumps: files, folders or archives (format detected per file)."""
    total_bytes = sum(_input_size(path) for path in paths)

    async def go(settings: Settings) -> None:
        async with db.open_engine(settings.database_url) as engine:
            await db.check_ready(engine, settings.pepper.reveal())
            index = await Ingestor.load_index(engine)
            log.info("enrolled index: %d fingerprints, %d KiB", len(index), index.nbytes // 1024)
            results = []
            with progress_bar(total_bytes) as on_bytes:
                async with PasswordVerifier() as verifier:
                    ingestor = Ingestor(engine, settings, index, verifier, on_bytes=on_bytes)
                    for path in paths:
                        results.append(
                            await ingestor.ingest(
                                path, source=source, format_override=format_override
                            )
                        )
        emit(summarise_ingest(results))

    run(go)


def _input_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


@main.command("exposures")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
)
@click.option("--action", type=click.Choice(["force_reset", "notify", "none"]))
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="Only exposures seen since this time (ISO 8601; UTC unless it has an offset).",
)
@handle_errors
def exposures_command(output: str, action: str | None, since: datetime | None) -> None:
    """List exposures (no plaintext identifiers: masked hints only)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    async def go(settings: Settings) -> None:
        async with db.open_engine(settings.database_url) as engine:
            await db.check_ready(engine, settings.pepper.reveal())
            async with engine.connect() as conn:
                rows = [row async for row in iter_exposures(conn, action=action, since=since)]
        write_exposures(rows, output, sys.stdout)

    run(go)
