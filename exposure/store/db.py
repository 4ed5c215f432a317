"""Engine creation, schema migration and the pepper check.

One engine per process, opened and disposed by :func:`open_engine`. SQLite is tuned for one
writer with concurrent readers (WAL); PostgreSQL goes through asyncpg.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from exposure.domain.fingerprints import pepper_check
from exposure.errors import ConfigurationError, FatalError, PepperMismatch
from exposure.secret import redact_url
from exposure.store import index_file
from exposure.store.models import Meta

if TYPE_CHECKING:
    from alembic.config import Config

PEPPER_CHECK_KEY = "pepper_check"


class SchemaMissing(FatalError):
    def __init__(self) -> None:
        super().__init__("the database has no schema yet: run `exposure db upgrade` first")


class SchemaOutdated(FatalError):
    def __init__(self, revision: str | None) -> None:
        super().__init__(
            f"the database schema is at revision {revision}, this release needs "
            f"{SCHEMA_REVISION}: run `exposure db upgrade`"
        )
        self.revision = revision


# The Alembic head this code needs, as a constant so that every command checks it without
# loading Alembic (tests/integration/test_migrations.py checks it is the shipped head).
SCHEMA_REVISION = "0013"

SQLITE_PAGE_BYTES = 16384
SQLITE_MMAP_BYTES = 1 << 30
SECRET_FILE_MODE = 0o600


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # 16 KiB pages for a database created now (an existing file keeps its own): ingests write
    # megabytes of staged corpus digests per batch and enrolment fills fingerprint indexes,
    # and four times fewer pages cut their WAL frames, checkpoint copies and system calls
    # (10M-line ingest -7% CPU, 1M-customer enrolment -23% time, measured).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across application crashes in WAL mode; only an OS crash may lose the
    # last transactions, which a re-run of the ingest restores.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 256 MiB page cache (an upper bound, allocated as used): fingerprint-keyed indexes are
    # written in random order, and a million customers' indexes then stay in memory.
    cursor.execute("PRAGMA cache_size=-262144")
    # Reads through a memory map (up to 1 GiB of the file) instead of a read() per page: an
    # ingest's look-ups and foreign-key checks touch random pages of the customer tables, and
    # copying each into the page cache cost a 10M-line URL list 2.5% of its time (measured).
    # Mapped pages count in the process's RSS, though the kernel can drop them at any time.
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


# A database host that vanishes without closing its connections (a failover, a network
# partition) is noticed by TCP within about a minute, instead of the two hours a socket may
# otherwise wait: the statement then fails as a lost connection and is retried
# (docs/decisions/database-reconnect.md).
_KEEPALIVE = (
    ("TCP_KEEPIDLE", 30),
    ("TCP_KEEPINTVL", 10),
    ("TCP_KEEPCNT", 3),
    ("TCP_USER_TIMEOUT", 60_000),  # ms: unacknowledged writes give up too
)
CONNECT_TIMEOUT_SECONDS = 10


def _keepalive(dbapi_connection: Any, _record: Any) -> None:
    transport = getattr(getattr(dbapi_connection, "driver_connection", None), "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: the server's end cannot vanish unseen
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in _KEEPALIVE:
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def create_engine(database_url: str) -> AsyncEngine:
    # hide_parameters: bound values must never reach an error message or a log line.
    if database_url.startswith("sqlite+aiosqlite"):
        _restrict_sqlite_files(make_url(database_url).database)
        engine = create_async_engine(database_url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if database_url.startswith("postgresql+asyncpg"):
        # pool_pre_ping: a connection the server dropped while it sat in the pool is replaced
        # before use, so a restart or failover costs the statements in flight, nothing more.
        engine = create_async_engine(
            database_url,
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            hide_parameters=True,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
        )
        event.listen(engine.sync_engine, "connect", _keepalive)
        return engine
    raise ConfigurationError(
        "EXPOSURE_DATABASE_URL",
        f"{redact_url(database_url)} is not supported: use sqlite+aiosqlite:///./exposure.db "
        "or postgresql+asyncpg://user:password@host/database",
    )


def _restrict_sqlite_files(database: str | None) -> None:
    """The database file holds every customer's password hash and the API token hashes:
    create it 0600 before SQLite does (which would use the umask, typically 0644; its -wal
    and -shm files then get the same mode), and take group and other access away from an
    existing one and its companions."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        raise ConfigurationError(
            "EXPOSURE_DATABASE_URL",
            f"SQLite cannot open the database file there: the folder {path.parent} does not "
            "exist (create it, or point the URL elsewhere)",
        )
    with contextlib.suppress(OSError):  # exists already, or not ours to create: SQLite says
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE))
    for companion in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + companion)
        with contextlib.suppress(OSError):  # absent, or not ours to change
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, SECRET_FILE_MODE)


@asynccontextmanager
async def open_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


def alembic_config() -> Config:
    from alembic.config import Config  # Alembic loads only to migrate or check the revision

    config = Config()
    # Installed from a wheel the migrations live in exposure/migrations; in a checkout the
    # editable install maps that package onto the top-level migrations/ folder.
    spec = importlib.util.find_spec("exposure.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise FatalError("the exposure.migrations package is missing from this installation")
    config.set_main_option("script_location", str(Path(spec.submodule_search_locations[0])))
    return config


def _run_upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, pepper: bytes, revision: str = "head") -> None:
    """Create or migrate the schema, and record (or check) the pepper this database uses."""
    async with engine.begin() as conn:
        await conn.run_sync(_run_upgrade, revision)
        # Whatever a migration did to the identifiers, no saved enrolled index is trusted.
        await index_file.new_generation(conn)
    async with engine.begin() as conn:
        stored = await _stored_pepper_check(conn)
        if stored is None:
            await conn.execute(
                insert(Meta).values(key=PEPPER_CHECK_KEY, value=pepper_check(pepper))
            )
        elif stored != pepper_check(pepper):
            raise PepperMismatch()


async def check_ready(engine: AsyncEngine, pepper: bytes) -> str:
    """Fail clearly when the schema is missing or not this release's, or the pepper is not
    this database's; return the schema revision."""
    async with engine.connect() as conn:
        try:
            stored = await _stored_pepper_check(conn)
            revision = await schema_revision(conn)
        except (OperationalError, ProgrammingError):
            raise SchemaMissing() from None
    if stored is None:
        raise SchemaMissing()
    if stored != pepper_check(pepper):
        raise PepperMismatch()
    if revision != SCHEMA_REVISION:
        raise SchemaOutdated(revision)
    return revision


async def schema_revision(conn: AsyncConnection) -> str | None:
    """The Alembic revision the database is at (raises when there is no version table)."""
    row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return None if row is None else str(row[0])


async def _stored_pepper_check(conn: AsyncConnection) -> str | None:
    result = await conn.execute(select(Meta.value).where(Meta.key == PEPPER_CHECK_KEY))
    return result.scalar_one_or_none()
