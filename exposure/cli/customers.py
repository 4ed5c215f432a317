"""Schema, enrolment and offboarding commands."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import click

from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.customers import service as customer_service
from exposure.customers.enrolment import Enroller, NotUtf8, sniff_encoding
from exposure.settings import Settings
from exposure.store import db
from exposure.store.audit import Actor

# How much of an enrolment file is checked for its encoding before anything is enrolled.
SNIFF_BYTES = 1 << 20


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
        with file.open("rb") as raw:
            looks_like = sniff_encoding(raw.read(SNIFF_BYTES))
        if looks_like is not None:
            raise NotUtf8(file.name, looks_like)  # before a single row is enrolled
        async with ready_engine(settings) as engine:
            try:
                with file.open(encoding="utf-8-sig", newline="") as stream:
                    summary = await customer_service.enrol_csv(
                        engine,
                        enroller,
                        stream,
                        actor=Actor.cli(),
                        source=file.name,
                        size_hint=size,
                    )
            except UnicodeDecodeError:
                # Past the first megabyte: the rows before were enrolled (enrolling the
                # converted file again is idempotent).
                raise NotUtf8(file.name, None) from None
            # Saved (beside a SQLite file, in this host's cache for PostgreSQL) for what the
            # database now holds: the next ingest maps it instead of building it
            # (exposure.store.index_file). Imported here: the ingest's modules are not worth
            # loading for the other commands of this group.
            from exposure.ingest.evaluator import load_index
            from exposure.store import index_file

            if index_file.folder_of(engine) is not None:  # else nothing to save it in
                await load_index(engine)
        emit({"file": file.name, **summary.as_json()})

    run(go)


# `exposure enrol` (the scope's spelling) works too, unlisted: the contract spells it enroll.
_enrol_alias = copy.copy(enroll)
_enrol_alias.hidden = True
main.add_command(_enrol_alias, "enrol")


@main.group("customers")
def customers_group() -> None:
    """Enrolled customers."""


@customers_group.command("delete")
@click.argument("customer_id")
@handle_errors
def customers_delete(customer_id: str) -> None:
    """Offboard CUSTOMER_ID: remove the customer and every fingerprint."""

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            deleted = await customer_service.offboard(
                engine, customer_id, actor=Actor.cli(), pepper=settings.pepper.reveal()
            )
        emit({"customer_id": customer_id, "deleted": deleted})
        if not deleted:
            click.echo(f"no customer {customer_id!r} was enrolled", err=True)
            sys.exit(1)

    run(go)
