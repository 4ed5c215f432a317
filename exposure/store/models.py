"""Table definitions. Migrations in ``migrations/versions`` must produce exactly this schema
(``tests/integration/test_migrations.py`` checks it on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from exposure.clock import utcnow
from exposure.store.types import UTCDateTime

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
    # Set when a reset completed without a new hash: from then on the enrolled hash is out of
    # date, so leaked passwords are judged ``unknown`` until the broker enrols the new one.
    password_superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
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


class IngestRun(Base):
    """One ingestion of one input (a file, folder or archive), identified by its content.

    ``checkpoint`` is the number of reader events whose effects are committed; a run killed
    part-way is resumed from there by the next ingest of the same content. ``stats`` holds the
    cumulative counters (JSON) committed with the checkpoint, so a resumed run reports the
    whole input. ``feeds_corpus`` is false when the same content was ingested before, so the
    leaked-password counts are not inflated by re-ingesting a file.
    """

    __tablename__ = "ingest_runs"
    __table_args__ = (
        CheckConstraint("state IN ('running', 'completed')", name="state"),
        Index(None, "content_key", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(128))
    input_name: Mapped[str] = mapped_column(String(1024))
    content_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    feeds_corpus: Mapped[bool] = mapped_column(Boolean)
    checkpoint: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Case(Base):
    """One customer incident: the exposures one forced reset (or one notification) covers.

    A customer has at most one ``open`` case (a partial unique index, so replicas cannot open
    two). ``action`` and ``severity`` are the highest of the case's exposures;
    ``announced_action`` is the highest action an outbox event was written for, so each case
    state is announced once. ``force_reset_at`` is when the action became ``force_reset``
    (time-to-reset counts from there). A case ends with a resolution (``reset_completed`` or
    ``dismissed``). An offboarded customer's cases stay, linked to a tombstone customer.
    """

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("state IN ('open', 'resolved')", name="state"),
        CheckConstraint("action IN ('force_reset', 'notify', 'none')", name="action"),
        Index(
            "uq_cases_open_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
        Index(None, "opened_at"),
        # Open cases by action (the worklist, /metrics). Not over (state, action): SQLite
        # would prefer it to the index above for a long IN list of customers (0012).
        Index(
            "ix_cases_open_action",
            "action",
            sqlite_where=text("state = 'open'"),
            postgresql_where=text("state = 'open'"),
        ),
    )

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    announced_action: Mapped[str | None] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    force_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))


class Exposure(Base):
    """One exposure per (customer, identifier kind, leaked-password fingerprint, site).

    ``password_fp`` is the keyed fingerprint of the leaked password, or empty bytes when the
    leak carried none; ``site_domain`` is empty when the leak named no site. (Empty values, not
    NULL, so the uniqueness constraint holds on every backend.)
    """

    __tablename__ = "exposures"
    __table_args__ = (
        UniqueConstraint("customer_id", "identifier_kind", "password_fp", "site_domain"),
        CheckConstraint("action IN ('force_reset', 'notify', 'none')", name="action"),
        CheckConstraint(
            "password_status IN ('live', 'tweaked', 'stale', 'unknown', 'absent')",
            name="password_status",
        ),
        Index(None, "first_seen"),
        Index(None, "action", "state"),
        Index(None, "case_id"),
    )

    exposure_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE")
    )
    # Every exposure belongs to a case (the writer sets it in the transaction that writes the
    # exposure; migration 0011 filled it for older rows). No foreign key and no NOT NULL: on
    # SQLite either would mean rebuilding this table, which cascades into every sighting and
    # event (see migration 0010), and case ids are only ever written by store.cases.
    case_id: Mapped[str | None] = mapped_column(String(36))
    identifier_kind: Mapped[str] = mapped_column(String(16))
    password_fp: Mapped[bytes] = mapped_column(LargeBinary(32))
    site_domain: Mapped[str] = mapped_column(String(253))
    match_strength: Mapped[str] = mapped_column(String(8))
    password_status: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    leak_type: Mapped[str] = mapped_column(String(32))
    has_pin: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    recommended_actions: Mapped[str] = mapped_column(Text)  # JSON list
    source: Mapped[str] = mapped_column(String(128))
    identifier_hint: Mapped[str] = mapped_column(String(96))
    state: Mapped[str] = mapped_column(String(16))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    occurrences: Mapped[int] = mapped_column(Integer)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set by the broker's reset service (POST /v1/exposures/{id}/resolution).
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))


class Sighting(Base):
    """Where and when an exposure was seen, so an auditor can trace it to its source line."""

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint("run_id", "ordinal", "exposure_id"),
        Index(None, "exposure_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exposure_id: Mapped[str] = mapped_column(
        ForeignKey("exposures.exposure_id", ondelete="CASCADE")
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(128))
    file: Mapped[str] = mapped_column(String(1024))
    line_no: Mapped[int] = mapped_column(Integer)
    leak_type: Mapped[str] = mapped_column(String(32))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """A webhook event written in the same transaction as the exposure change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'failed', 'dead')", name="state"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "case_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    exposure_id: Mapped[str | None] = mapped_column(
        ForeignKey("exposures.exposure_id", ondelete="CASCADE")
    )
    # The case whose opening or escalation the event announces (NULL for test pings). No
    # foreign key, for the reason given on Exposure.case_id.
    case_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, fixed at creation
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    # A sender leases the rows it claims, so a crashed sender's rows become due again.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CorpusPending(Base):
    """Leaked-password SHA-1 digests staged by ingestion, not yet in ``leaked_passwords``.

    Rows of up to 100,000 digests per ingest batch, written in the batch's own transaction (so
    a resumed run stages every line exactly once): 20-byte digests concatenated, repeats
    included, either in ``digests`` or, beside a SQLite file, in the spool file
    ``spool_file`` names (:class:`exposure.store.corpus.Spool`). Ingestion never pays for ten
    million corpus rows itself: the process serving ``/range`` folds staged rows into
    ``leaked_passwords`` and deletes them in one transaction
    (:func:`exposure.store.corpus.compact`), so each row is counted exactly once.
    """

    __tablename__ = "corpus_pending"
    __table_args__ = (
        CheckConstraint("(digests IS NULL) <> (spool_file IS NULL)", name="one_place"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digests: Mapped[bytes | None] = mapped_column(LargeBinary)
    spool_file: Mapped[str | None] = mapped_column(String(64))
    digest_count: Mapped[int] = mapped_column(Integer)
    staged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CorpusSegment(Base):
    """Folded corpus digests that ``/range`` already serves, waiting to settle into
    ``leaked_passwords``: one row per fold and 12-bit digest prefix (``segment``), its
    ``records`` the fold's distinct digests of that prefix in ascending order, each a 20-byte
    SHA-1 and a 4-byte big-endian count (:mod:`exposure.store.corpus_segments`).

    A fold writes thousands of these rows instead of millions of B-tree entries; settling
    moves a slice of segments into ``leaked_passwords`` in one transaction, so every digest
    is counted in exactly one of the two tables.
    """

    __tablename__ = "corpus_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment: Mapped[int] = mapped_column(Integer, index=True)
    record_count: Mapped[int] = mapped_column(Integer)
    records: Mapped[bytes] = mapped_column(LargeBinary)


class LeakedPassword(Base):
    """The leaked-password corpus: SHA-1 of every leaked password and how often it was seen,
    served by ``/range`` in the Pwned Passwords format (prefix lookups are key-range scans)."""

    __tablename__ = "leaked_passwords"
    __table_args__ = ({"sqlite_with_rowid": False},)

    sha1: Mapped[bytes] = mapped_column(LargeBinary(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class PasswordCheck(Base):
    """Each (customer, leaked password, enrolled hash) is verified with argon2 once, ever.

    ``hash_key`` identifies the enrolled hash (a digest of its PHC string), so enrolling a
    new password hash makes every earlier verdict for that customer stale automatically.
    """

    __tablename__ = "password_checks"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    password_fp: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    hash_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    verified: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TweakCheck(Base):
    """Each (customer, leaked password, enrolled hash) whose leaked password was stale is
    tweak-checked once (docs/decisions/tweak-checks.md): the small changes of the leaked
    password were verified against the hash, and ``tweaked`` says whether one matched.

    Keyed like :class:`PasswordCheck`. Never the variant: which tweak matched, or any tweak at
    all, is not stored. ``guesses`` is the budget the check used; a larger budget checks again.
    """

    __tablename__ = "tweak_checks"

    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    password_fp: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    hash_key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    tweaked: Mapped[bool] = mapped_column(Boolean)
    guesses: Mapped[int] = mapped_column(Integer)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """Every attempt to deliver an outbox event: status, latency, error, outcome."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index(None, "outbox_id"), Index(None, "attempted_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered, retry, dead, disabled
    error: Mapped[str | None] = mapped_column(Text)


class WebhookEndpoint(Base):
    """State of a webhook endpoint; a 410 Gone disables it until an operator re-enables it."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class ConnectorState(Base):
    """A connector's cursor (JSON), saved in the same transaction as the data it covers."""

    __tablename__ = "connector_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConnectorRun(Base):
    """One run of a connector, for `exposure connectors status` and the weekly report."""

    __tablename__ = "connector_runs"
    __table_args__ = (Index(None, "connector", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    connector: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # running, success, failed, skipped
    pages: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    error_class: Mapped[str | None] = mapped_column(String(16))  # fatal, retriable, skippable
    error: Mapped[str | None] = mapped_column(Text)


class EmailRangeKey(Base):
    """What lets HIBP's k-anonymity e-mail search be answered without plaintext e-mails.

    ``prefix`` is the first 6 hex digits of the SHA-1 of the normalised address (the only part
    that is ever sent to HIBP); ``keyed_sha1`` is HMAC(pepper, "email-sha1" NUL + the full
    upper-case SHA-1 hex). A range response lists suffixes; prefix + suffix, keyed the same
    way, is looked up here.
    """

    __tablename__ = "email_range_keys"
    __table_args__ = (Index(None, "prefix"), Index(None, "customer_id"))

    keyed_sha1: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(
        ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True
    )
    prefix: Mapped[str] = mapped_column(String(6))


class IngestChunk(Base):
    """One line-aligned byte range of a large plain-text dump in the drop folder.

    A dump over ``EXPOSURE_FOLDER_CHUNK_BYTES`` is registered once as rows of this table
    (``file_key`` is the keyed content digest of the whole file, as the pipeline computes it)
    and every replica claims ``pending`` rows, or ``claimed`` rows whose lease ran out, with
    ``FOR UPDATE SKIP LOCKED``. ``start_byte`` and ``end_byte`` are inclusive; ``format`` was
    detected once from the head of the whole file, so every range parses the same way;
    ``file_bytes`` is the file's size when it was registered. ``attempts`` counts claims.
    """

    __tablename__ = "ingest_chunks"
    __table_args__ = (
        UniqueConstraint("file_key", "chunk_no"),
        CheckConstraint("state IN ('pending', 'claimed', 'done')", name="state"),
        Index(None, "state"),
        Index(None, "path"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_key: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    # Where the file goes once its last range is ingested (the connector's LargeFilePage
    # said so); NULL leaves it in place.
    done_folder: Mapped[str | None] = mapped_column(String(1024))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    chunk_no: Mapped[int] = mapped_column(Integer)
    start_byte: Mapped[int] = mapped_column(BigInteger)
    end_byte: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# The access tables live in their own module; importing it here registers them on
# ``Base.metadata``, so migrations and schema checks see one whole schema.
from exposure.store import access_models  # noqa: E402, F401
