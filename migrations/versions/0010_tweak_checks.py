"""Tweak checks: each (customer, leaked password, enrolled hash) tweak-checked once, ever.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tweak_checks",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("password_fp", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("tweaked", sa.Boolean(), nullable=False),
        sa.Column("guesses", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_tweak_checks_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "customer_id", "password_fp", "hash_key", name=op.f("pk_tweak_checks")
        ),
    )


def downgrade() -> None:
    op.drop_table("tweak_checks")
