"""Customers and identifier fingerprints.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customers")),
    )
    op.create_table(
        "customer_identifiers",
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("strength", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scheme", sa.SmallInteger(), nullable=False),
        sa.Column("hint", sa.String(length=96), nullable=False),
        sa.CheckConstraint(
            "kind IN ('email', 'login_id', 'phone')", name=op.f("ck_customer_identifiers_kind")
        ),
        sa.CheckConstraint(
            "strength IN ('strict', 'variant')", name=op.f("ck_customer_identifiers_strength")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_customer_identifiers_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "fingerprint", "customer_id", "strength", name=op.f("pk_customer_identifiers")
        ),
    )
    op.create_index(
        op.f("ix_customer_identifiers_customer_id"), "customer_identifiers", ["customer_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_identifiers_customer_id"), table_name="customer_identifiers")
    op.drop_table("customer_identifiers")
    op.drop_table("customers")
    op.drop_table("meta")
