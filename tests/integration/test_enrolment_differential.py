"""The bulk enrolment path writes exactly the rows a plain reference computes.

The reference below applies the enrolment rules row by row with the domain functions
(``hmac.digest`` fingerprints, :func:`normalise`, :func:`mask`, :func:`classify`), none of the
bulk path's shortcuts (keyed states prepared once, rows as tuples, merged batches, worker
processes). A few thousand seeded rows mix unicode e-mails, Gmail variants, phones in every
spelling, repeated customer ids and identifiers, refused hashes and bad rows, on both backends.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import argon2
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.customers import service as customer_service
from exposure.customers.enrolment import Enroller, customer_id_problem
from exposure.domain.fingerprints import (
    FINGERPRINT_SCHEME,
    email_range_key,
    email_sha1,
    identifier_fingerprint,
)
from exposure.domain.identity import IdentifierKind, mask, normalise
from exposure.errors import InvalidIdentifier
from exposure.passwords.schemes import RefusedHash, classify
from exposure.settings import Settings
from exposure.store.audit import Actor
from exposure.store.models import Customer, CustomerIdentifier, EmailRangeKey

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
COLUMNS = ["customer_id", "email", "login_id", "phone", "password_hash"]
SUPERSEDED_AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

LOCALS = ["taro", "Hanako.Yamada", "ｋｏｔｏｈａ", "ゆうき", "o'neil", "a.b..c", "Ü.ber", "x"]
DOMAINS = [
    "example.jp",
    "Gmail.com",
    "googlemail.com",
    "例え.jp",
    "ｄｏｃｏｍｏ.ne.jp",
    "xn--r8jz45g.jp",
]
BAD_EMAILS = [
    "no-at-sign",
    "@example.jp",
    "a@b",
    "two@@example.jp",
    "sp ace@example.jp",
    "a@-x-.jp",
]
PHONES = [
    "090-1234-5678",
    "０９０１２３４５６７８",
    "+81 90 1234 5678",
    "(03) 1234-5678",
    "0312345678",
]
BAD_PHONES = ["123", "call me", "090-1234-567x", "+1 555"]
LOGINS = ["QXZW8821", "qxzw8821", "ＫＢＴ－７７１０５", "kbt\u221277105", "user_01", "ID"]
BAD_LOGINS = ["has space", "tab\there"]


def random_rows(rng: random.Random, count: int, hashes: list[str]) -> list[list[str]]:
    """Rows of five cells; about one in twelve is bad in some way."""
    rows: list[list[str]] = []
    for n in range(count):
        cid = f"C{rng.randrange(count // 3):05d}"  # about three rows per customer id
        local = rng.choice(LOCALS) + ("" if rng.random() < 0.3 else f"{n}")
        if rng.random() < 0.2:
            local += f"+tag{n % 5}"
        email = f"{local}@{rng.choice(DOMAINS)}" if rng.random() < 0.8 else ""
        if rng.random() < 0.03:
            email = rng.choice(BAD_EMAILS)
        login = (rng.choice(LOGINS) + (str(n % 97) if rng.random() < 0.7 else "")) * (
            rng.random() < 0.7
        )
        if rng.random() < 0.02:
            login = rng.choice(BAD_LOGINS)
        phone = rng.choice(PHONES) if rng.random() < 0.25 else ""
        if rng.random() < 0.02:
            phone = rng.choice(BAD_PHONES)
        password = rng.choice(hashes) if rng.random() < 0.3 else ""
        if rng.random() < 0.01:
            cid = rng.choice(["", " C00001", "C\x0700001", "C" * 129])
        if rng.random() < 0.05:
            email = f"  {email.upper()}  " if email else email
        rows.append([cid, email, login, phone, password])
    return rows


@dataclass
class Reference:
    """What the database and the summary must hold, applied one row at a time."""

    hashes: dict[str, str | None] = field(default_factory=dict)
    identifiers: dict[tuple[bytes, str, str], tuple[object, ...]] = field(default_factory=dict)
    ranges: dict[tuple[bytes, str], tuple[object, ...]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    strict: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    superseded_cleared: set[str] = field(default_factory=set)
    batch_of: dict[tuple[bytes, str, str], int] = field(default_factory=dict)

    def apply(self, pepper: bytes, line_no: int, cells: list[str], batch: int) -> None:
        """``batch`` numbers the row's batch: two spellings of one Gmail mailbox share a
        variant key, and its hint is the last one within a batch (merged before writing),
        the first one across batches (the key is only added, never rewritten)."""
        cid, email, login, phone, password = cells
        problems = [f"customer_id: {p}"] if (p := customer_id_problem(cid)) else []
        verdict = classify(password.strip()) if password.strip() else None
        found = []
        for kind, raw in (
            (IdentifierKind.EMAIL, email),
            (IdentifierKind.LOGIN_ID, login),
            (IdentifierKind.PHONE, phone),
        ):
            if not raw.strip():
                continue
            try:
                found.append(normalise(kind, raw.strip()))
            except InvalidIdentifier as error:
                problems.append(f"{kind.value}: {error.reason}")
        if problems:
            self.rejected.append((line_no, "; ".join(problems)))
            return
        self.seen.add(cid)
        if isinstance(verdict, RefusedHash):
            self.hashes[cid] = None
            self.refused[verdict.reason.value] += 1
        elif verdict is not None:
            if self.hashes.get(cid) != password.strip():
                self.superseded_cleared.add(cid)
            self.hashes[cid] = password.strip()
        else:
            self.hashes.setdefault(cid, None)
        for ident in found:
            kind = ident.kind.value
            for strength, key in (("strict", ident.strict), ("variant", ident.variant)):
                if key is None:
                    continue
                fingerprint = identifier_fingerprint(pepper, kind, key)
                if self.batch_of.setdefault((fingerprint, cid, strength), batch) != batch:
                    continue
                self.identifiers[(fingerprint, cid, strength)] = (
                    fingerprint,
                    cid,
                    strength,
                    kind,
                    FINGERPRINT_SCHEME,
                    mask(ident),
                )
            self.strict[kind] += 1
            if ident.kind is IdentifierKind.EMAIL:
                sha1 = email_sha1(ident.strict)
                keyed = email_range_key(pepper, sha1)
                self.ranges[(keyed, cid)] = (keyed, cid, sha1[:6])


def lines(rows: list[list[str]]) -> Iterator[tuple[int, list[str]]]:
    return ((n, row) for n, row in enumerate(rows, start=2))


async def database_rows(
    engine: AsyncEngine,
) -> tuple[dict[str, tuple[object, ...]], set[tuple[object, ...]], set[tuple[object, ...]]]:
    async with engine.connect() as conn:
        people = (
            await conn.execute(
                select(
                    Customer.customer_id, Customer.password_hash, Customer.password_superseded_at
                )
            )
        ).all()
        idents = (await conn.execute(select(CustomerIdentifier.__table__))).all()
        ranges = (await conn.execute(select(EmailRangeKey.__table__))).all()
    return (
        {row[0]: (row[1], row[2] is not None) for row in people},
        {tuple(row) for row in idents},
        {tuple(row) for row in ranges},
    )


@pytest.mark.parametrize("parallel", [True, False])
async def test_bulk_enrolment_writes_what_the_reference_computes(
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
) -> None:
    rng = random.Random(18)
    pepper = settings.pepper.reveal()
    good = [HASHER.hash(f"pw{n}") for n in range(3)]
    refused = ["5f4dcc3b5aa765d61d8327deb882cf99", "$1$saltsalt$abcdefghijklmnopqrstuv", "hunter2"]
    rows = random_rows(rng, 3_000, good + refused)
    # Customers already enrolled with a hash a reset superseded: each appears once in the
    # file, with the same hash, a new one, a refused one or none.
    old = HASHER.hash("old")
    existing = [f"C{n:05d}" for n in range(1_000, 1_008)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(Customer.__table__),
            [
                {
                    "customer_id": cid,
                    "password_hash": old,
                    "password_superseded_at": SUPERSEDED_AT,
                    "created_at": SUPERSEDED_AT,
                    "updated_at": SUPERSEDED_AT,
                }
                for cid in existing
            ],
        )
    for n, cid in enumerate(existing):
        rows.append([cid, f"kept{n}@example.jp", "", "", [old, good[0], refused[0], ""][n % 4]])
    rows.insert(1_500, ["C1", "a@example.jp", "x"])  # too few fields
    rows.insert(700, ["", "", "", "", ""])  # a blank line is skipped, not counted

    reference = Reference(hashes=dict.fromkeys(existing, old))
    batch_rows = 250  # many batches, repeats within and across them
    records = [(n, cells) for n, cells in lines(rows) if any(cell.strip() for cell in cells)]
    for index, (line_no, cells) in enumerate(records):
        if len(cells) != len(COLUMNS):
            reference.rejected.append((line_no, f"expected 5 fields, found {len(cells)}"))
        else:
            reference.apply(pepper, line_no, cells, index // batch_rows)

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        if any(cell.strip() for cell in row):
            writer.writerow(row)
        else:
            text.write("\n")
    csv_text = text.getvalue()
    monkeypatch.setattr(customer_service, "BATCH_ROWS", batch_rows)
    monkeypatch.setattr(customer_service, "PARALLEL_FROM_BYTES", 0 if parallel else 1 << 40)
    enroller = Enroller(
        pepper,
        login_id_case_sensitive=settings.login_id_case_sensitive,
        phone_region=settings.phone_region,
    )
    result = await customer_service.enrol_csv(
        engine,
        enroller,
        io.StringIO(csv_text),
        actor=Actor.cli("test-suite"),
        size_hint=len(csv_text),
    )

    people, idents, ranges = await database_rows(engine)
    assert len(reference.identifiers) > 3_000 and len(reference.rejected) > 100
    assert {cid: phc for cid, (phc, _) in people.items()} == reference.hashes
    assert {cid for cid, (_, superseded) in people.items() if superseded} == (
        set(existing) - reference.superseded_cleared
    )
    assert reference.superseded_cleared & set(existing)  # some were cleared, some kept
    assert idents == set(reference.identifiers.values())
    assert ranges == set(reference.ranges.values())
    summary = result.as_json()
    assert summary["rows"] == len(records)
    assert summary["customers"] == len(reference.seen)
    assert summary["identifiers"] == dict(sorted(reference.strict.items()))
    assert summary["rejected"] == len(reference.rejected)
    assert summary["rejected_rows"] == [
        {"line": line, "reason": reason} for line, reason in reference.rejected
    ]
    assert summary["rejected_by_reason"] == dict(
        Counter(reason for _, reason in reference.rejected).most_common()
    )
    assert summary["hashes_refused"] == dict(reference.refused.most_common())
