"""Leaked-password digests staged by ingestion until the corpus job folds them in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corpus_pending",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corpus_pending")),
    )


def downgrade() -> None:
    op.drop_table("corpus_pending")
