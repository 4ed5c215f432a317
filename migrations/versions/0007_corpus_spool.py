"""Staged corpus digests may live in spool files beside a SQLite database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("corpus_pending", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spool_file", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("digest_count", sa.Integer(), nullable=True))
        batch_op.alter_column("digests", existing_type=sa.LargeBinary(), nullable=True)
    op.execute("UPDATE corpus_pending SET digest_count = length(digests) / 20")
    with op.batch_alter_table("corpus_pending", schema=None) as batch_op:
        batch_op.alter_column("digest_count", existing_type=sa.Integer(), nullable=False)
        batch_op.create_check_constraint(
            op.f("ck_corpus_pending_one_place"), "(digests IS NULL) <> (spool_file IS NULL)"
        )


def downgrade() -> None:
    spooled = op.get_bind().execute(
        sa.text("SELECT count(*) FROM corpus_pending WHERE spool_file IS NOT NULL")
    )
    if spooled.scalar_one():
        # The older schema cannot name a spool file: its digests would be lost unfolded.
        raise RuntimeError(
            "staged corpus digests wait in spool files: run `exposure corpus compact` first"
        )
    with op.batch_alter_table("corpus_pending", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_corpus_pending_one_place"), type_="check")
        batch_op.drop_column("digest_count")
        batch_op.drop_column("spool_file")
        batch_op.alter_column("digests", existing_type=sa.LargeBinary(), nullable=False)
