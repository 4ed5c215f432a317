"""Keyed e-mail SHA-1 range keys for HIBP's k-anonymity search.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_range_keys",
        sa.Column("keyed_sha1", sa.LargeBinary(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("prefix", sa.String(length=6), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_email_range_keys_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("keyed_sha1", "customer_id", name=op.f("pk_email_range_keys")),
    )
    op.create_index(op.f("ix_email_range_keys_customer_id"), "email_range_keys", ["customer_id"])
    op.create_index(op.f("ix_email_range_keys_prefix"), "email_range_keys", ["prefix"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_range_keys_prefix"), table_name="email_range_keys")
    op.drop_index(op.f("ix_email_range_keys_customer_id"), table_name="email_range_keys")
    op.drop_table("email_range_keys")
