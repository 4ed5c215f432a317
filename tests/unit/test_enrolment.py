from __future__ import annotations

import io
import logging

import argon2
import pytest

from exposure.customers.enrolment import (
    BadHeader,
    Enroller,
    EnrolmentRow,
    RowRejected,
    prepare,
    sniff_encoding,
)
from exposure.domain.fingerprints import identifier_fingerprint

PEPPER = bytes(range(32))
PHC = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("Sakura#2025")


def enroller(**options: bool) -> Enroller:
    return Enroller(PEPPER, login_id_case_sensitive=options.get("case", False), phone_region="JP")


def read(text: str) -> list[EnrolmentRow | RowRejected]:
    return list(enroller().read_csv(io.StringIO(text)))


HEADER = "customer_id,email,login_id,phone,password_hash\n"


def test_row_becomes_strict_fingerprints_with_hints() -> None:
    [row] = read(HEADER + f"C0001,Taro.Yamada@Example.JP,ABCD1234,090-1234-5678,{PHC}\n")
    assert isinstance(row, EnrolmentRow)
    assert row.customer_id == "C0001"
    assert row.password_hash == PHC
    by_kind = {ident.kind.value: ident for ident in row.identifiers}
    assert by_kind["email"].fingerprint == identifier_fingerprint(
        PEPPER, "email", "taro.yamada@example.jp"
    )
    assert by_kind["login_id"].fingerprint == identifier_fingerprint(PEPPER, "login_id", "abcd1234")
    assert by_kind["phone"].fingerprint == identifier_fingerprint(PEPPER, "phone", "+819012345678")
    assert by_kind["email"].hint.endswith("@example.jp") and "yamada" not in by_kind["email"].hint
    assert all(ident.strength == "strict" for ident in row.identifiers)


def test_quoted_and_unquoted_phc_strings_both_read() -> None:
    rows = read(HEADER + f'C1,,L1,,"{PHC}"\nC2,,L2,,{PHC}\n')
    assert [r.password_hash for r in rows if isinstance(r, EnrolmentRow)] == [PHC, PHC]


def test_gmail_address_gets_a_variant_fingerprint() -> None:
    [row] = read(HEADER + "C0002,taro.yamada+kabu@gmail.com,,,\n")
    assert isinstance(row, EnrolmentRow)
    strengths = {ident.strength: ident.fingerprint for ident in row.identifiers}
    assert strengths["variant"] == identifier_fingerprint(PEPPER, "email", "taroyamada@gmail.com")


def test_empty_identifier_columns_are_allowed_and_header_order_is_free() -> None:
    [row] = read("login_id,customer_id\nＡＢＣＤ１２３４,C0003\n")
    assert isinstance(row, EnrolmentRow)
    assert [i.kind.value for i in row.identifiers] == ["login_id"]
    assert row.identifiers[0].fingerprint == identifier_fingerprint(PEPPER, "login_id", "abcd1234")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (",taro@example.jp,,,", "customer_id: empty"),
        ("C1,not-an-email,,,", "email: no_at"),
        ("C1,taro@,,,", "email: bad_domain"),
        ("C1,,,12345,", "phone: not_a_phone"),
        ("C1,,ab cd,,", "login_id: bad_login_id"),
        ("C1,taro@example.jp", "expected 5 fields, found 2"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_reason(line: str, reason: str) -> None:
    rows = read(HEADER + "C0,ok@example.jp,,,\n" + line + "\n")
    assert isinstance(rows[0], EnrolmentRow)
    assert rows[1] == RowRejected(3, reason)


def test_rejection_reasons_never_quote_the_value() -> None:
    rows = read(HEADER + "C1,secret-person-at-example.jp,,,\n")
    assert isinstance(rows[0], RowRejected)
    assert "secret-person" not in rows[0].reason


def test_quoted_multiline_field_reports_the_row_start() -> None:
    rows = read(HEADER + 'C1,a@example.jp,,,\n"C\n2",b@example.jp,,,\nC3,c@example.jp,,,\n')
    assert [r.line_no for r in rows] == [2, 3, 5]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("", "empty"),
        ("email,login_id\n", "no customer_id"),
        ("id,mail\n", "no customer_id"),
        ("customer_id,email,email\n", "twice"),
    ],
)
def test_bad_header_is_fatal_and_explains(header: str, fragment: str) -> None:
    with pytest.raises(BadHeader, match=fragment):
        read(header)


def test_bom_in_header_is_tolerated() -> None:
    [row] = read("\ufeffcustomer_id,email\nC1,a@example.jp\n")
    assert isinstance(row, EnrolmentRow)


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("5f4dcc3b5aa765d61d8327deb882cf99", "unsalted_fast_hash"),  # MD5
        ("$1$69uEqZWF$fS/uCKxpMlE/Oa6PfELvC0", "salted_fast_hash"),  # md5crypt
        ("$2b$31$" + "G4WUB.SwBpf5uTOUvqBoZuz9i24/mDNYGKLXURd716Hn52LG1BT/S", "cost_too_high"),
        ("$2b$12$abcdefghijklmnopqrstuu", "malformed"),
        ("Sakura#2025", "not_a_hash"),  # a plaintext password is never kept
    ],
)
def test_a_refused_hash_enrols_the_identifiers_without_it(cell: str, reason: str) -> None:
    [row] = read(HEADER + f"C1,taro@example.jp,TARO01,,{cell}\n")
    assert isinstance(row, EnrolmentRow)
    assert row.password_hash is None
    assert row.hash_refused is not None and row.hash_refused.value == reason
    assert {i.kind.value for i in row.identifiers} == {"email", "login_id"}


def test_the_last_hash_cell_of_a_repeated_customer_decides() -> None:
    rows = read(
        HEADER
        + f"C1,a@example.jp,,,{PHC}\n"
        + "C1,b@example.jp,,,5f4dcc3b5aa765d61d8327deb882cf99\n"  # refused: clears
        + "C2,c@example.jp,,,5f4dcc3b5aa765d61d8327deb882cf99\n"
        + f"C2,d@example.jp,,,{PHC}\n"  # a good hash after a refused one: kept
        + "C3,e@example.jp,,,5f4dcc3b5aa765d61d8327deb882cf99\n"
        + "C3,f@example.jp,,,\n"  # an empty cell changes nothing
    )
    batch = prepare(rows)
    assert batch.customers == {"C1": None, "C2": PHC, "C3": None}
    assert batch.cleared == {"C1", "C3"}
    assert [(r.line_no, r.reason) for r in batch.hashes_refused] == [
        (3, "unsalted_fast_hash"),
        (4, "unsalted_fast_hash"),
        (6, "unsalted_fast_hash"),
    ]
    assert not batch.rejected


def test_an_extra_column_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="exposure.customers"):
        rows = read(
            "customer_id,name,email,password_hash\nC1,山田 太郎,taro@example.jp," + PHC + "\n"
        )
    [row] = rows
    assert isinstance(row, EnrolmentRow) and row.password_hash == PHC
    assert [i.kind.value for i in row.identifiers] == ["email"]
    assert "column(s) name ignored" in caplog.text
    assert "山田" not in caplog.text  # the header is named, never a value


def test_every_bad_value_of_a_row_is_reported() -> None:
    [row] = read(HEADER + " C1,not-an-email,ab cd,12345,\n")
    assert isinstance(row, RowRejected)
    assert row.reason == (
        "customer_id: whitespace at the start or end (ids are taken exactly as written); "
        "email: no_at; login_id: bad_login_id; phone: not_a_phone"
    )


@pytest.mark.parametrize(
    ("customer_id", "reason"),
    [
        (" =1+1", "whitespace at the start or end"),
        ("\t=1+1", "whitespace at the start or end"),
        ("=1+1 ", "whitespace at the start or end"),
        ("\u3000C1", "whitespace at the start or end"),  # an ideographic space
        ("C\x001", "control characters"),
        ("C\u200b1", "control characters"),  # a zero-width space: invisible, not printable
        ("C" * 129, "longer than 128 characters"),
    ],
)
def test_customer_ids_are_taken_exactly_as_written(customer_id: str, reason: str) -> None:
    row = enroller().build(2, {"customer_id": customer_id, "email": "taro@example.jp"})
    assert isinstance(row, RowRejected) and row.reason.startswith(f"customer_id: {reason}")


def test_distinct_ids_are_never_merged_into_one() -> None:
    """Ids that trimming would have merged are refused, so no two records become one."""
    rows = [
        enroller().build(n, {"customer_id": cid, "email": f"u{n}@example.jp"})
        for n, cid in enumerate((" =1+1", "\t=1+1", "=1+1"), start=2)
    ]
    enrolled = [r.customer_id for r in rows if isinstance(r, EnrolmentRow)]
    assert enrolled == ["=1+1"] and prepare(rows).customers.keys() == {"=1+1"}


def test_the_encoding_of_a_file_is_told() -> None:
    text = "customer_id,email\nC1,山田@example.jp\n"
    assert sniff_encoding(text.encode("utf-8")) is None
    assert sniff_encoding(text.encode("utf-8")[:-13]) is None  # cut inside a character
    cp932 = sniff_encoding(text.encode("cp932"))
    assert cp932 is not None and cp932.startswith("Shift_JIS (CP932)")
    assert sniff_encoding(text.encode("utf-16")) == "UTF-16"
