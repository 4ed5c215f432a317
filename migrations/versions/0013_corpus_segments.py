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


def downgrade() -> None:
    waiting = op.get_bind().execute(sa.text("SELECT count(*) FROM corpus_segments"))
    if waiting.scalar_one():
        # The older schema has nowhere to keep them: their counts would be lost.
        raise RuntimeError(
            "folded corpus digests wait in corpus_segments: run `exposure corpus compact` first"
        )
    op.drop_index(op.f("ix_corpus_segments_segment"), table_name="corpus_segments")
    op.drop_table("corpus_segments")
