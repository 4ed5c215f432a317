"""Tweak checks: each (customer, leaked password, enrolled hash) tweak-checked once, ever; and
the password status ``tweaked`` (docs/decisions/tweak-checks.md).

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

STATUSES = "password_status IN ('live', 'stale', 'unknown', 'absent')"
WITH_TWEAKED = "password_status IN ('live', 'tweaked', 'stale', 'unknown', 'absent')"


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
    _replace_status_check(STATUSES, WITH_TWEAKED)


def downgrade() -> None:
    op.execute("UPDATE exposures SET password_status = 'stale' WHERE password_status = 'tweaked'")
    _replace_status_check(WITH_TWEAKED, STATUSES)
    op.drop_table("tweak_checks")


def _replace_status_check(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_exposures_password_status"), "exposures", type_="check")
        op.create_check_constraint(op.f("ck_exposures_password_status"), "exposures", new)
        return
    # SQLite cannot alter a CHECK constraint, and rebuilding the table (Alembic's batch mode)
    # would drop it with foreign keys on, which deletes every sighting and event by cascade.
    # Widening a CHECK changes nothing on disk, so the table's definition is edited in place,
    # as SQLite documents for such changes (https://sqlite.org/lang_altertable.html, section
    # "Making Other Kinds Of Table Schema Changes").
    table_sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'exposures'")
    ).scalar_one()
    if old not in table_sql:
        raise RuntimeError("exposures: the password_status check is not the expected one")
    version = int(bind.execute(sa.text("PRAGMA schema_version")).scalar_one())
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'exposures'"),
        {"sql": table_sql.replace(old, new)},
    )
    bind.execute(sa.text(f"PRAGMA schema_version = {version + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))
