"""Exposures, sightings, ingest runs, the outbox, password checks and the corpus.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("input_name", sa.String(length=1024), nullable=False),
        sa.Column("content_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("feeds_corpus", sa.Boolean(), nullable=False),
        sa.Column("checkpoint", sa.Integer(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('running', 'completed')", name=op.f("ck_ingest_runs_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_runs")),
    )
    op.create_index(
        op.f("ix_ingest_runs_content_key_state"), "ingest_runs", ["content_key", "state"]
    )

    op.create_table(
        "leaked_passwords",
        sa.Column("sha1", sa.LargeBinary(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sha1", name=op.f("pk_leaked_passwords")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "exposures",
        sa.Column("exposure_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("identifier_kind", sa.String(length=16), nullable=False),
        sa.Column("password_fp", sa.LargeBinary(length=32), nullable=False),
        sa.Column("site_domain", sa.String(length=253), nullable=False),
        sa.Column("match_strength", sa.String(length=8), nullable=False),
        sa.Column("password_status", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("leak_type", sa.String(length=32), nullable=False),
        sa.Column("has_pin", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recommended_actions", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("identifier_hint", sa.String(length=96), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('force_reset', 'notify', 'none')", name=op.f("ck_exposures_action")
        ),
        sa.CheckConstraint(
            "password_status IN ('live', 'stale', 'unknown', 'absent')",
            name=op.f("ck_exposures_password_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_exposures_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exposure_id", name=op.f("pk_exposures")),
        sa.UniqueConstraint(
            "customer_id",
            "identifier_kind",
            "password_fp",
            "site_domain",
            name=op.f("uq_exposures_customer_id_identifier_kind_password_fp_site_domain"),
        ),
    )
    op.create_index(op.f("ix_exposures_action_state"), "exposures", ["action", "state"])
    op.create_index(op.f("ix_exposures_first_seen"), "exposures", ["first_seen"])

    op.create_table(
        "password_checks",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("password_fp", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_password_checks_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "customer_id", "password_fp", "hash_key", name=op.f("pk_password_checks")
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("exposure_id", sa.String(length=36), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed', 'dead')", name=op.f("ck_outbox_state")
        ),
        sa.ForeignKeyConstraint(
            ["exposure_id"],
            ["exposures.exposure_id"],
            name=op.f("fk_outbox_exposure_id_exposures"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_index(op.f("ix_outbox_state_next_attempt_at"), "outbox", ["state", "next_attempt_at"])

    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exposure_id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("file", sa.String(length=1024), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("leak_type", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exposure_id"],
            ["exposures.exposure_id"],
            name=op.f("fk_sightings_exposure_id_exposures"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["ingest_runs.id"],
            name=op.f("fk_sightings_run_id_ingest_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint(
            "run_id", "ordinal", "exposure_id", name=op.f("uq_sightings_run_id_ordinal_exposure_id")
        ),
    )
    op.create_index(op.f("ix_sightings_exposure_id"), "sightings", ["exposure_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sightings_exposure_id"), table_name="sightings")

    op.drop_table("sightings")
    op.drop_index(op.f("ix_outbox_state_next_attempt_at"), table_name="outbox")

    op.drop_table("outbox")
    op.drop_table("password_checks")
    op.drop_index(op.f("ix_exposures_first_seen"), table_name="exposures")
    op.drop_index(op.f("ix_exposures_action_state"), table_name="exposures")

    op.drop_table("exposures")
    op.drop_table("leaked_passwords")
    op.drop_index(op.f("ix_ingest_runs_content_key_state"), table_name="ingest_runs")

    op.drop_table("ingest_runs")
