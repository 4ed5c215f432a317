"""The few places where SQLite and PostgreSQL need different SQL, and the bulk INSERT that
hands rows to either driver as they are."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, any_, bindparam
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


# Bound values per bulk INSERT statement on SQLite: under its limit (32,766).
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
    order of ``columns``): on SQLite as many rows per ``VALUES`` list as it takes, on
    PostgreSQL as one array per column. The values are handed to the driver as they are: the
    ingest's bulk writes, where SQLAlchemy's per-row parameter processing cost more than the
    database (5 µs of 85 per match for the exposure row alone, measured). So no column type is
    applied: datetimes go through :func:`timestamp_params`.
    Returns the ``returning`` column of every row inserted; a conflicting row is skipped."""
    names = (*columns, *conflict_columns, *([] if returning is None else [returning]))
    for name in names:
        table.c[name]  # a KeyError here: only the table's own columns reach the SQL
    if is_postgres(conn):
        return await _insert_arrays(conn, table, columns, rows, conflict_columns, returning)
    inserted: list[Any] = []
    per_statement = max(1, VALUES_PER_STATEMENT // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_sql(
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


async def _insert_arrays(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict_columns: Sequence[str],
    returning: str | None,
) -> list[Any]:
    """PostgreSQL's form of :func:`insert_rows`: the rows as one array per column, unnested
    by the server. One statement text per table and columns, so asyncpg prepares it once;
    a multi-row VALUES list is a new statement for each row count, which the server parses
    and plans every time (500 exposures took 61 ms that way, most of an ingest step)."""
    if not rows:
        return []
    sql = _unnest_sql(table, tuple(columns), tuple(conflict_columns), returning)
    arrays = tuple(list(column) for column in zip(*rows, strict=True))
    result = await conn.exec_driver_sql(sql, arrays)
    return list(result.scalars()) if returning is not None else []


_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=64)
def _unnest_sql(
    table: Table, columns: tuple[str, ...], conflict_columns: tuple[str, ...], returning: str | None
) -> str:
    arrays = ", ".join(
        f"${n}::{table.c[name].type.compile(dialect=_POSTGRES)}[]"
        for n, name in enumerate(columns, start=1)
    )
    target = f"({_quoted(conflict_columns)}) " if conflict_columns else ""
    # Fixed text: names are the table's own (checked by the caller), values are parameters.
    sql = f'INSERT INTO "{table.name}" ({_quoted(columns)}) SELECT * FROM '  # noqa: S608
    sql += f"unnest({arrays}) ON CONFLICT {target}DO NOTHING"
    return sql if returning is None else f'{sql} RETURNING "{returning}"'


@functools.lru_cache(maxsize=256)
def _insert_sql(
    table: str,
    columns: tuple[str, ...],
    count: int,
    conflict_columns: tuple[str, ...],
    returning: str | None,
) -> str:
    """The statement's text: names are the table's own (checked by the caller), values are
    placeholders."""
    width = len(columns)
    groups = ", ".join(["(" + ", ".join("?" * width) + ")"] * count)
    target = f"({_quoted(conflict_columns)}) " if conflict_columns else ""
    sql = f'INSERT INTO "{table}" ({_quoted(columns)}) VALUES {groups} '  # noqa: S608
    sql += f"ON CONFLICT {target}DO NOTHING"
    return sql if returning is None else f'{sql} RETURNING "{returning}"'


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


V = TypeVar("V")
# Bound values per IN list: well under the parameter limits of SQLite (32,766) and asyncpg
# (32,767), and large enough that a batch of matches takes one query per table.
IN_LIST_SIZE = 5000


def one_of(conn: AsyncConnection, column: ColumnElement[V], values: list[V]) -> ColumnElement[bool]:
    """``column IN (values)``. On PostgreSQL ``column = ANY($1)`` with the values as one array:
    the statement's text is then the same for any number of values, so asyncpg prepares it
    once, where each length of an IN list is a new statement for the server to parse and plan
    (the ingest's look-ups run once per batch, each with another number of values)."""
    if is_postgres(conn):
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def in_lists(values: Collection[V], size: int = IN_LIST_SIZE) -> Iterator[list[V]]:
    """The distinct ``values`` in lists short enough for one ``IN (...)`` each."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]
