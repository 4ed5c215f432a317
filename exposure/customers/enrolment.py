"""Customer enrolment: turn rows of a broker's customer export into fingerprints.

Pure code: no database. A row becomes an :class:`EnrolmentRow` (the customer id, an optional
password hash of a scheme the verifier accepts, and keyed fingerprints with masked hints) or a
:class:`RowRejected` with the row's line number and a reason that never quotes the offending
value. A password hash the verifier refuses (:mod:`exposure.passwords.schemes`) does not reject
the row: its identifiers are enrolled, no hash is kept (the customer is monitored with status
``unknown``) and the refusal is counted by reason.
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from exposure.domain.fingerprints import (
    EMAIL_PREFIX_LENGTH,
    FINGERPRINT_SCHEME,
    KeyedFingerprints,
    email_sha1,
)
from exposure.domain.identity import IdentifierKind, mask, normalise
from exposure.errors import FatalError, InvalidIdentifier
from exposure.passwords.schemes import Refusal, RefusedHash, classify

COLUMNS = ("customer_id", "email", "login_id", "phone", "password_hash")
IDENTIFIER_COLUMNS = (IdentifierKind.EMAIL, IdentifierKind.LOGIN_ID, IdentifierKind.PHONE)
# The kinds with their column names as plain strings: an enum's .value is a slow lookup.
_IDENTIFIER_NAMES = tuple((kind, kind.value) for kind in IDENTIFIER_COLUMNS)
MAX_CUSTOMER_ID = 128

log = logging.getLogger("exposure.customers")


class BadHeader(FatalError):
    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"enrolment file header: {problem}; expected {','.join(COLUMNS)}")


class NotUtf8(FatalError):
    """The enrolment file is not UTF-8; the message says what it looks like and how to fix it
    (the header is not to blame)."""

    def __init__(self, name: str, looks_like: str | None) -> None:
        self.looks_like = looks_like
        found = f" (it reads as {looks_like})" if looks_like else ""
        super().__init__(
            f"{name} is not UTF-8 text{found}: save it as 'CSV UTF-8' in Excel, or convert "
            f"it, e.g. iconv -f CP932 -t UTF-8 {name} > utf8.csv; enrolling again is safe"
        )


def sniff_encoding(head: bytes) -> str | None:
    """``None`` when ``head`` (the start of a file) is UTF-8, else what it most likely is."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return None
    except UnicodeDecodeError:
        pass
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    try:
        head.decode("cp932")
    except UnicodeDecodeError:
        try:  # the sample may end inside a two-byte character
            head[:-1].decode("cp932")
        except UnicodeDecodeError:
            return None if not head else "an encoding that is neither UTF-8 nor Shift_JIS"
    return "Shift_JIS (CP932), what Excel saves as plain 'CSV' in Japan"


@dataclass(frozen=True, slots=True)
class EnrolledIdentifier:
    kind: IdentifierKind
    strength: str  # "strict" or "variant"
    fingerprint: bytes
    hint: str


@dataclass(frozen=True, slots=True)
class EnrolmentRow:
    line_no: int
    customer_id: str
    password_hash: str | None
    identifiers: tuple[EnrolledIdentifier, ...]
    # (6-hex SHA-1 prefix, keyed full SHA-1) of each e-mail, for HIBP's range search.
    email_ranges: tuple[tuple[str, bytes], ...] = ()
    # Why the row's password hash was refused; the stored hash is then cleared.
    hash_refused: Refusal | None = None


@dataclass(frozen=True, slots=True)
class RowRejected:
    line_no: int
    reason: str


@dataclass(frozen=True, slots=True)
class HashRefused:
    """A row enrolled without its password hash, and why (a :class:`Refusal` value)."""

    line_no: int
    reason: str


# An accepted row as plain values: customer id, password hash (None when absent or refused),
# the refusal, identifiers as (kind, strength, fingerprint, hint) and e-mail ranges as
# (prefix, keyed SHA-1). What :class:`EnrolmentRow` holds, without the objects.
RowFields = tuple[
    str,
    str | None,
    Refusal | None,
    list[tuple[str, str, bytes, str]],
    list[tuple[str, bytes]],
]


@dataclass(slots=True)
class PreparedBatch:
    """A chunk of rows ready for the database, as plain tuples.

    The unit that comes back from a fingerprinting worker: plain tuples pickle ten times faster
    than the row objects, which mattered more than the fingerprinting itself. Repeated customer
    ids are merged (the last non-empty hash cell wins) and repeated identifiers dropped. A
    customer whose last non-empty cell was refused is in :attr:`cleared`: the database forgets
    any hash it held for them, which the broker has just said is out of date.
    """

    rows: int = 0
    customers: dict[str, str | None] = field(default_factory=dict)
    cleared: set[str] = field(default_factory=set)
    hashes_refused: list[HashRefused] = field(default_factory=list)
    identifiers: dict[tuple[bytes, str, str], tuple[bytes, str, str, str, int, str]] = field(
        default_factory=dict
    )
    email_ranges: dict[tuple[bytes, str], tuple[bytes, str, str]] = field(default_factory=dict)
    strict_by_kind: Counter[str] = field(default_factory=Counter)
    rejected: list[RowRejected] = field(default_factory=list)

    def add(self, item: EnrolmentRow | RowRejected) -> None:
        if isinstance(item, RowRejected):
            self.rows += 1
            self.rejected.append(item)
            return
        self.add_fields(
            item.line_no,
            (
                item.customer_id,
                item.password_hash,
                item.hash_refused,
                [(i.kind.value, i.strength, i.fingerprint, i.hint) for i in item.identifiers],
                list(item.email_ranges),
            ),
        )

    def add_fields(self, line_no: int, fields: RowFields) -> None:
        """Add an accepted row as :meth:`Enroller.fields` gives it (no row objects: this is
        the bulk path)."""
        self.rows += 1
        cid, password_hash, hash_refused, idents, ranges = fields
        if hash_refused is not None:
            self.customers[cid] = None
            self.cleared.add(cid)
            self.hashes_refused.append(HashRefused(line_no, hash_refused.value))
        elif password_hash is not None or cid not in self.customers:
            self.customers[cid] = password_hash
            if password_hash is not None:
                self.cleared.discard(cid)
        identifiers = self.identifiers
        for kind, strength, fingerprint, hint in idents:
            # A repeat keeps its place and takes the last hint, as a dict assignment does.
            identifiers[(fingerprint, cid, strength)] = (
                fingerprint,
                cid,
                strength,
                kind,
                FINGERPRINT_SCHEME,
                hint,
            )
            if strength == "strict":
                self.strict_by_kind[kind] += 1
        for prefix, keyed in ranges:
            self.email_ranges[(keyed, cid)] = (keyed, cid, prefix)


def prepare(items: Iterable[EnrolmentRow | RowRejected]) -> PreparedBatch:
    batch = PreparedBatch()
    for item in items:
        batch.add(item)
    return batch


class Enroller:
    """Builds enrolment rows with one pepper and one set of normalisation options."""

    def __init__(self, pepper: bytes, *, login_id_case_sensitive: bool, phone_region: str) -> None:
        self._pepper = pepper
        self._keys = KeyedFingerprints(pepper)
        self._case_sensitive = login_id_case_sensitive
        self._region = phone_region

    def build(self, line_no: int, record: Mapping[str, str | None]) -> EnrolmentRow | RowRejected:
        """One customer record (CSV row or JSON object) -> fingerprints, or why it is refused
        (every bad value of the row, not only the first)."""
        fields = self.fields(line_no, record)
        if isinstance(fields, RowRejected):
            return fields
        customer_id, password_hash, hash_refused, idents, ranges = fields
        return EnrolmentRow(
            line_no,
            customer_id,
            password_hash,
            tuple(
                EnrolledIdentifier(IdentifierKind(kind), strength, fingerprint, hint)
                for kind, strength, fingerprint, hint in idents
            ),
            tuple(ranges),
            hash_refused,
        )

    def fields(self, line_no: int, record: Mapping[str, str | None]) -> RowFields | RowRejected:
        """:meth:`build` as plain values (:data:`RowFields`), the form the bulk path keeps."""
        customer_id = record.get("customer_id") or ""
        problems = [f"customer_id: {p}"] if (p := customer_id_problem(customer_id)) else []
        password_hash = (record.get("password_hash") or "").strip() or None
        hash_refused: Refusal | None = None
        if password_hash is not None:
            verdict = classify(password_hash)
            if isinstance(verdict, RefusedHash):
                password_hash, hash_refused = None, verdict.reason
        identifiers: list[tuple[str, str, bytes, str]] = []
        email_ranges: list[tuple[str, bytes]] = []
        keys = self._keys
        for kind, name in _IDENTIFIER_NAMES:
            raw = record.get(name)
            if not raw or not (raw := raw.strip()):
                continue  # an empty cell costs nothing more
            try:
                normalised = normalise(
                    kind,
                    raw,
                    login_id_case_sensitive=self._case_sensitive,
                    phone_region=self._region,
                )
            except InvalidIdentifier as error:
                problems.append(f"{name}: {error.reason}")
                continue
            hint = mask(normalised)
            identifiers.append((name, "strict", keys.identifier(name, normalised.strict), hint))
            if normalised.variant is not None:
                identifiers.append(
                    (name, "variant", keys.identifier(name, normalised.variant), hint)
                )
            if kind is IdentifierKind.EMAIL:
                sha1 = email_sha1(normalised.strict)
                email_ranges.append((sha1[:EMAIL_PREFIX_LENGTH], keys.email_range(sha1)))
        if problems:
            return RowRejected(line_no, "; ".join(problems))
        return customer_id, password_hash, hash_refused, identifiers, email_ranges

    def read_csv(self, stream: TextIO) -> Iterator[EnrolmentRow | RowRejected]:
        """Stream rows from a CSV with the contract header; line numbers are the file's."""
        for item in csv_records(stream):
            yield item if isinstance(item, RowRejected) else self.build(*item)

    def build_many(
        self, items: Iterable[tuple[int, Mapping[str, str | None]] | RowRejected]
    ) -> list[EnrolmentRow | RowRejected]:
        """:meth:`build` over a chunk: the unit of work handed to a worker process."""
        return [item if isinstance(item, RowRejected) else self.build(*item) for item in items]

    def prepare_many(
        self, items: Iterable[tuple[int, Mapping[str, str | None]] | RowRejected]
    ) -> PreparedBatch:
        """:meth:`build` over a chunk, prepared for the database: a worker process's job."""
        batch = PreparedBatch()
        for item in items:
            if isinstance(item, RowRejected):
                batch.add(item)
                continue
            line_no, record = item
            fields = self.fields(line_no, record)
            if isinstance(fields, RowRejected):
                batch.add(fields)
            else:
                batch.add_fields(line_no, fields)
        return batch

    def read_records(
        self, records: Iterable[Mapping[str, str | None]]
    ) -> Iterator[EnrolmentRow | RowRejected]:
        """Rows from already-parsed records (JSON enrolment); "line" numbers count from 1."""
        for index, record in enumerate(records, start=1):
            yield self.build(index, record)


def customer_id_problem(customer_id: str) -> str | None:
    """Why ``customer_id`` cannot be a customer id, or ``None``.

    An id is taken exactly as written: ``" C1"``, ``"C1"`` and ``"\tC1"`` would otherwise be
    trimmed into one customer, silently merging records that a broker's system keeps apart.
    So whitespace at either end and control characters are refused, with the reason
    (docs/decisions/customer-ids.md); a spreadsheet formula in an id is harmless here, and
    every CSV we write neutralises it.
    """
    if not customer_id.strip():
        return "empty"
    if customer_id != customer_id.strip():
        return "whitespace at the start or end (ids are taken exactly as written)"
    if not customer_id.isprintable():
        return "control characters"
    if len(customer_id) > MAX_CUSTOMER_ID:
        return f"longer than {MAX_CUSTOMER_ID} characters"
    return None


def csv_records(stream: TextIO) -> Iterator[tuple[int, dict[str, str | None]] | RowRejected]:
    """Check the header, then yield each row as ``(line_no, record)`` or a rejection.

    A column the monitor does not use (a name, a branch code) is ignored, with a warning that
    names it; a missing ``customer_id`` column or a column given twice is refused.
    """
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise BadHeader("the file is empty")
    columns = [name.strip().lstrip("\ufeff").lower() for name in header]
    if "customer_id" not in columns:
        raise BadHeader("no customer_id column")
    known = [name for name in columns if name in COLUMNS]
    if len(set(known)) != len(known):
        raise BadHeader("a column appears twice")
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        log.warning(
            "enrolment file: column(s) %s ignored (the monitor reads %s)",
            ", ".join(name[:40] or "(unnamed)" for name in unknown),
            ",".join(COLUMNS),
        )
    # An unquoted PHC string ($argon2id$v=19$m=65536,t=3,p=4$...) holds two commas (passlib's
    # $scrypt$ln=16,r=8,p=1$... too); when the hash is the last column, the extra fields can
    # only be its pieces.
    hash_last = columns[-1] == "password_hash"
    start = reader.line_num
    for row in reader:
        line_no = start + 1  # a quoted field may span lines: report where the row starts
        start = reader.line_num
        if len(row) > len(columns) and hash_last:
            row = [*row[: len(columns) - 1], ",".join(row[len(columns) - 1 :])]
        if len(row) != len(columns):
            if not any(cell.strip() for cell in row):
                continue  # blank line
            yield RowRejected(line_no, f"expected {len(columns)} fields, found {len(row)}")
            continue
        yield (
            line_no,
            {name: cell for name, cell in zip(columns, row, strict=True) if name in COLUMNS},
        )
