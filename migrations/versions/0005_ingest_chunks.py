"""Byte-range chunks of large drop-folder dumps, claimed by the replicas.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_key", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("start_byte", sa.BigInteger(), nullable=False),
        sa.Column("end_byte", sa.BigInteger(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'claimed', 'done')", name=op.f("ck_ingest_chunks_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_chunks")),
        sa.UniqueConstraint(
            "file_key", "chunk_no", name=op.f("uq_ingest_chunks_file_key_chunk_no")
        ),
    )
    op.create_index(op.f("ix_ingest_chunks_path"), "ingest_chunks", ["path"])
    op.create_index(op.f("ix_ingest_chunks_state"), "ingest_chunks", ["state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ingest_chunks_state"), table_name="ingest_chunks")
    op.drop_index(op.f("ix_ingest_chunks_path"), table_name="ingest_chunks")
    op.drop_table("ingest_chunks")
