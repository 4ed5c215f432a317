"""The few places where SQLite and PostgreSQL need different SQL."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for this backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def placeholders(conn: AsyncConnection, count: int) -> str:
    """``?, ?, ?`` or ``$1, $2, $3``: for the bulk paths that bypass SQL compilation."""
    if is_postgres(conn):
        return ", ".join(f"${n}" for n in range(1, count + 1))
    return ", ".join("?" * count)


def timestamp_param(conn: AsyncConnection, value: datetime) -> Any:
    """An aware UTC datetime as the raw driver expects it (bulk paths skip column types).

    SQLite gets the naive-UTC text that :class:`~exposure.store.types.UTCDateTime` writes.
    """
    if is_postgres(conn):
        return value
    return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


V = TypeVar("V")
# Bound values per IN list: well under the parameter limits of SQLite (32,766) and asyncpg
# (32,767), and large enough that a batch of matches takes one query per table.
IN_LIST_SIZE = 5000


def in_lists(values: Collection[V], size: int = IN_LIST_SIZE) -> Iterator[list[V]]:
    """The distinct ``values`` in lists short enough for one ``IN (...)`` each."""
    distinct = list(dict.fromkeys(values))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]
