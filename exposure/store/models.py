"""Table definitions. Migrations in ``migrations/versions`` must produce exactly this schema
(``tests/integration/test_migrations.py`` checks it on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from exposure.store.types import UTCDateTime, utcnow

# Explicit constraint names so migrations can alter them on every backend (SQLite batch mode).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Meta(Base):
    """Key/value facts about this database (e.g. the pepper check value)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Customer(Base):
    """An enrolled customer: the broker's own customer id and, optionally, an argon2 hash of the
    customer's current password (a PHC string, as the broker's login system stores it)."""

    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerIdentifier(Base):
    """A keyed fingerprint of one of a customer's identifiers; never the identifier itself.

    ``strength`` is ``strict`` for the strict key and ``variant`` for a provider-specific variant
    key (Gmail dots and +tags). The primary key leads with the fingerprint because matching looks
    identifiers up by fingerprint; the customer index serves offboarding.
    """

    __tablename__ = "customer_identifiers"
    __table_args__ = (
        CheckConstraint("kind IN ('email', 'login_id', 'phone')", name="kind"),
        CheckConstraint("strength IN ('strict', 'variant')", name="strength"),
        Index(None, "customer_id"),
    )

    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    strength: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    scheme: Mapped[int] = mapped_column(SmallInteger)
    hint: Mapped[str] = mapped_column(String(96))
