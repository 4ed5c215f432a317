"""Folded corpus digests wait in sorted segments before they settle into the corpus table.

A fold used to upsert every distinct digest into ``leaked_passwords`` before ``/range`` could
serve it: 200,000 to 500,000 digests a second, so a 10M-line dump took 20 to 50 s to reach
``/range``. Now a fold writes its tally as sorted segments (one row per 12-bit prefix), which
``/range`` reads beside the table, and the upsert runs later, slice by slice
(docs/decisions/corpus-segments.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_INCOMPRESSIBLE = (("corpus_segments", "records"), ("corpus_pending", "digests"))


def upgrade() -> None:
    op.create_table(
        "corpus_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("segment", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("records", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corpus_segments")),
    )
    op.create_index(op.f("ix_corpus_segments_segment"), "corpus_segments", ["segment"])
    if op.get_bind().dialect.name == "postgresql":
        # Digests are random: PostgreSQL's attempt to compress each value before moving it out
        # of line was most of the cost of writing it (4,096 segment rows of a 3M-digest fold:
        # 2.05 s, 0.51 s without; staged rows of 2 MB: 0.17 s, 0.13 s per 40 MB; measured).
        for table, column in _INCOMPRESSIBLE:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM corpus_segments"))
    if waiting.scalar_one():
        # The older schema has nowhere to keep them: their counts would be lost.
        raise RuntimeError(
            "folded corpus digests wait in corpus_segments: run `exposure corpus compact` first"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE corpus_pending ALTER COLUMN digests SET STORAGE EXTENDED")
    op.drop_index(op.f("ix_corpus_segments_segment"), table_name="corpus_segments")
    op.drop_table("corpus_segments")
