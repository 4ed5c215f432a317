"""store.dialect.insert_rows on real SQLite and PostgreSQL: rows split over several statements
(each under the drivers' limit on bound values) all land, and conflicting rows are skipped and
not returned."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.store.dialect import VALUES_PER_STATEMENT, insert_rows
from exposure.store.models import Meta

meta = cast(Table, Meta.__table__)


async def test_rows_past_one_statement_all_land_and_conflicts_are_skipped(
    engine: AsyncEngine,
) -> None:
    count = VALUES_PER_STATEMENT + VALUES_PER_STATEMENT // 4  # 2 columns: 3 statements
    rows = [(f"bulk-{n:06d}", str(n)) for n in range(count)]
    async with engine.begin() as conn:
        inserted = await insert_rows(conn, meta, ("key", "value"), rows, returning="key")
    assert sorted(inserted) == [key for key, _ in rows]

    # Again with half of them new: only the new ones are written and returned, the others
    # (the same keys, other values) are left as they were.
    again = [(f"bulk-{n:06d}", "changed") for n in range(count // 2, count + count // 2)]
    async with engine.begin() as conn:
        inserted = await insert_rows(conn, meta, ("key", "value"), again, returning="key")
        total = (
            await conn.execute(
                select(func.count()).select_from(meta).where(meta.c.key.like("bulk-%"))
            )
        ).scalar_one()
        kept = (
            await conn.execute(select(meta.c.value).where(meta.c.key == f"bulk-{count - 1:06d}"))
        ).scalar_one()
    assert sorted(inserted) == [f"bulk-{n:06d}" for n in range(count, count + count // 2)]
    assert total == count + count // 2
    assert kept == str(count - 1)
