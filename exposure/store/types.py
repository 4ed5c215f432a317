"""Column types shared by the models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    SQLite has no time zone type and hands back naive values; this type refuses naive input
    and re-attaches UTC on the way out, so no naive datetime ever reaches the code.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime passed to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite stores text; keep it naive UTC there so lexical order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        process = super().bind_processor(dialect)
        if process is None:
            return None
        last: tuple[datetime | None, Any] = (None, None)

        def bind(value: datetime | None) -> Any:
            # A batch binds one `now` to thousands of rows: convert it once. Datetimes are
            # immutable, so the same object converts the same; the pair swaps atomically.
            nonlocal last
            seen, converted = last
            if value is None or value is not seen:
                converted = process(value)
                last = (value, converted)
            return converted

        return bind

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
