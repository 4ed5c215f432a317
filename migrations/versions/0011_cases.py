"""Cases: one customer incident, one forced reset (docs/decisions/cases.md).

Adds the ``cases`` table (at most one open case per customer, by a partial unique index), the
case of every exposure and of every outbox event, and the time a customer's enrolled hash was
superseded by a completed reset. Existing exposures become cases: one open case per customer
for the customer's open exposures (the events they already sent count as announced), and one
resolved case per resolved exposure, keeping its resolution, so past figures do not change.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ACTION_RANK = {"none": 0, "notify": 1, "force_reset": 2}
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_OPEN = "'open'"


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("announced_action", sa.String(length=16), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("force_reset_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.CheckConstraint("state IN ('open', 'resolved')", name=op.f("ck_cases_state")),
        sa.CheckConstraint(
            "action IN ('force_reset', 'notify', 'none')", name=op.f("ck_cases_action")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.customer_id"],
            name=op.f("fk_cases_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_cases")),
    )
    op.create_index(
        "uq_cases_open_customer",
        "cases",
        ["customer_id"],
        unique=True,
        sqlite_where=sa.text(f"state = {_OPEN}"),
        postgresql_where=sa.text(f"state = {_OPEN}"),
    )
    op.create_index(op.f("ix_cases_opened_at"), "cases", ["opened_at"])
    op.create_index(op.f("ix_cases_state_action"), "cases", ["state", "action"])
    # Plain ADD COLUMN on both backends (no batch rebuild: see models.Exposure.case_id).
    with op.batch_alter_table("exposures", recreate="never") as batch:
        batch.add_column(sa.Column("case_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_exposures_case_id"), "exposures", ["case_id"])
    with op.batch_alter_table("outbox", recreate="never") as batch:
        batch.add_column(sa.Column("case_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_outbox_case_id"), "outbox", ["case_id"])
    with op.batch_alter_table("customers", recreate="never") as batch:
        batch.add_column(
            sa.Column("password_superseded_at", sa.DateTime(timezone=True), nullable=True)
        )
    _exposures_become_cases()


def downgrade() -> None:
    with op.batch_alter_table("customers", recreate="never") as batch:
        batch.drop_column("password_superseded_at")
    op.drop_index(op.f("ix_outbox_case_id"), table_name="outbox")
    with op.batch_alter_table("outbox", recreate="never") as batch:
        batch.drop_column("case_id")
    op.drop_index(op.f("ix_exposures_case_id"), table_name="exposures")
    with op.batch_alter_table("exposures", recreate="never") as batch:
        batch.drop_column("case_id")
    op.drop_index(op.f("ix_cases_state_action"), table_name="cases")
    op.drop_index(op.f("ix_cases_opened_at"), table_name="cases")
    op.drop_index("uq_cases_open_customer", table_name="cases")
    op.drop_table("cases")


def _exposures_become_cases() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT exposure_id, customer_id, action, severity, state, first_seen, decided_at, "
            "resolved_at, resolved_by FROM exposures ORDER BY first_seen, exposure_id"
        )
    ).all()
    open_by_customer: dict[str, list[Any]] = defaultdict(list)
    cases: list[dict[str, Any]] = []
    case_of: list[dict[str, str]] = []
    for row in rows:
        if row.state == "open":
            open_by_customer[row.customer_id].append(row)
            continue
        case = _case(row.customer_id, [row], state="resolved")
        case.update(resolution=row.state, resolved_at=row.resolved_at, resolved_by=row.resolved_by)
        cases.append(case)
        case_of.append({"exposure_id": row.exposure_id, "case_id": case["case_id"]})
    for customer_id, members in open_by_customer.items():
        case = _case(customer_id, members, state="open")
        cases.append(case)
        case_of.extend({"exposure_id": m.exposure_id, "case_id": case["case_id"]} for m in members)
    if not cases:
        return
    bind.execute(
        sa.text(
            "INSERT INTO cases (case_id, customer_id, state, action, severity, announced_action,"
            " opened_at, updated_at, force_reset_at, resolution, resolved_at, resolved_by) VALUES"
            " (:case_id, :customer_id, :state, :action, :severity, :announced_action,"
            " :opened_at, :updated_at, :force_reset_at, :resolution, :resolved_at, :resolved_by)"
        ),
        cases,
    )
    bind.execute(
        sa.text("UPDATE exposures SET case_id = :case_id WHERE exposure_id = :exposure_id"),
        case_of,
    )
    bind.execute(
        sa.text(
            "UPDATE outbox SET case_id = (SELECT e.case_id FROM exposures e"
            " WHERE e.exposure_id = outbox.exposure_id) WHERE exposure_id IS NOT NULL"
        )
    )


def _case(customer_id: str, members: list[Any], *, state: str) -> dict[str, Any]:
    top = max(members, key=lambda m: (_ACTION_RANK[m.action], _SEVERITY_RANK[m.severity]))
    severity = max((m.severity for m in members), key=_SEVERITY_RANK.__getitem__)
    # Times come back as datetimes on PostgreSQL and as SQLAlchemy's fixed-width UTC strings on
    # SQLite (a plain text() query); either orders correctly and is written back unchanged.
    forced = [m.decided_at for m in members if m.action == "force_reset"]
    opened = min(m.first_seen for m in members)
    return {
        "case_id": str(uuid.uuid4()),
        "customer_id": customer_id,
        "state": state,
        "action": top.action,
        "severity": severity,
        # Before cases every exposure announced its own action, so the case's is announced.
        "announced_action": None if top.action == "none" else top.action,
        "opened_at": opened,
        "updated_at": max(m.decided_at for m in members),
        "force_reset_at": min(forced) if forced else None,
        "resolution": None,
        "resolved_at": None,
        "resolved_by": None,
    }
