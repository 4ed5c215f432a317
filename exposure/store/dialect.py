"""The few places where SQLite and PostgreSQL need different SQL, and the bulk INSERT that
hands rows to either driver as they are."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


def upsert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for this backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def beside_sqlite_file(bind: AsyncConnection | AsyncEngine, suffix: str) -> Path | None:
    """``<database file><suffix>`` (absolute) for a SQLite database in a file, where what
    belongs to it is kept beside it; None for PostgreSQL and for an in-memory or URI-named
    SQLite database."""
    url = bind.sync_engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database + suffix).resolve()


def placeholders(conn: AsyncConnection, count: int) -> str:
    """``?, ?, ?`` or ``$1, $2, $3``: for the bulk paths that bypass SQL compilation."""
    if is_postgres(conn):
        return ", ".join(f"${n}" for n in range(1, count + 1))
    return ", ".join("?" * count)


def timestamp_param(conn: AsyncConnection, value: datetime) -> Any:
    """An aware datetime as the raw driver expects it (bulk paths skip column types).

    SQLite gets the naive-UTC text that :class:`~exposure.store.types.UTCDateTime` writes.
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime passed to the database; use an aware UTC datetime")
    if is_postgres(conn):
        return value
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def timestamp_params(conn: AsyncConnection) -> Callable[[datetime | None], Any]:
    """:func:`timestamp_param` for the rows of one bulk write (None stays None), each distinct
    datetime converted once: a batch writes the same ``now`` into thousands of rows."""
    converted: dict[datetime, Any] = {}

    def convert(value: datetime | None) -> Any:
        if value is None:
            return None
        found = converted.get(value)
        if found is None:
            found = converted[value] = timestamp_param(conn, value)
        return found

    return convert


# Bound values per bulk INSERT statement: under SQLite's limit (32,766) and asyncpg's (32,767).
VALUES_PER_STATEMENT = 32_000


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict_columns: Sequence[str] = (),
    returning: str | None = None,
) -> list[Any]:
    """``INSERT ... ON CONFLICT [(conflict_columns)] DO NOTHING`` of ``rows`` (tuples in the
    order of ``columns``), as many rows per statement as the drivers take, the values handed
    to the driver as they are: the ingest's bulk writes, where SQLAlchemy's per-row parameter
    processing cost more than the database (5 µs of 85 per match for the exposure row alone,
    measured). So no column type is applied: datetimes go through :func:`timestamp_params`.
    Returns the ``returning`` column of every row inserted; a conflicting row is skipped."""
    names = (*columns, *conflict_columns, *([] if returning is None else [returning]))
    for name in names:
        table.c[name]  # a KeyError here: only the table's own columns reach the SQL
    inserted: list[Any] = []
    per_statement = max(1, VALUES_PER_STATEMENT // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(
            conn.dialect.name,
            table.name,
            tuple(columns),
            len(chunk),
            tuple(conflict_columns),
            returning,
        )
        result = await conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        if returning is not None:
            inserted.extend(result.scalars())
    return inserted


@functools.lru_cache(maxsize=256)
def _insert_sql(
    dialect: str,
    table: str,
    columns: tuple[str, ...],
    count: int,
    conflict_columns: tuple[str, ...],
    returning: str | None,
) -> str:
    """The statement's text: names are the table's own (checked by the caller), values are
    placeholders."""
    width = len(columns)
    if dialect == "postgresql":  # $1, $2, ... numbered through the whole statement
        groups = ", ".join(_numbered_group(width, row) for row in range(count))
    else:
        groups = ", ".join(["(" + ", ".join("?" * width) + ")"] * count)
    target = f"({_quoted(conflict_columns)}) " if conflict_columns else ""
    sql = f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES {groups} '  # noqa: S608
    sql += f"ON CONFLICT {target}DO NOTHING"
    return sql if returning is None else f'{sql} RETURNING "{returning}"'


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


@functools.lru_cache(maxsize=8192)
def _numbered_group(width: int, row: int) -> str:
    first = row * width + 1
    return "(" + ", ".join(f"${n}" for n in range(first, first + width)) + ")"


V = TypeVar("V")
# Bound values per IN list: well under the parameter limits of SQLite (32,766) and asyncpg
# (32,767), and large enough that a batch of matches takes one query per table.
IN_LIST_SIZE = 5000


def in_lists(values: Collection[V], size: int = IN_LIST_SIZE) -> Iterator[list[V]]:
    """The distinct ``values`` in lists short enough for one ``IN (...)`` each."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]
