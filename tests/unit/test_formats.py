"""Format API contract: names, errors, screening, accounting, ordering and redaction.

Per-format grammars are covered in test_formats_lists.py (combo, ULP),
test_formats_stealer.py (stealer passwords, cookies), test_formats_tables.py (CSV, JSON
lines, SQL) and test_formats_detect.py. All values are invented.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from exposure.dumps.formats import FORMATS, REASONS, detect_format, parse_lines
from exposure.dumps.records import CookieHit, LeakRecord, Rejected


def numbered(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), 1))


# One small, valid sample per format, with its first record's login and password.
SAMPLES: dict[str, tuple[str, str, str]] = {
    "combo": ("taro.yamada@example.com:Sakura#2025", "taro.yamada@example.com", "Sakura#2025"),
    "ulp": ("https://trade.sec.example/login:ABCD1234:Sakura#2025", "ABCD1234", "Sakura#2025"),
    "stealer_passwords": (
        "URL: https://trade.sec.example/login\nUsername: ABCD1234\nPassword: Sakura#2025",
        "ABCD1234",
        "Sakura#2025",
    ),
    "csv": ("email,password\ntaro@example.jp,Sakura#2025", "taro@example.jp", "Sakura#2025"),
    "jsonl": (
        '{"email": "taro@example.jp", "password": "Sakura#2025"}',
        "taro@example.jp",
        "Sakura#2025",
    ),
    "sql": (
        "INSERT INTO users (email, password) VALUES ('taro@example.jp','Sakura#2025');",
        "taro@example.jp",
        "Sakura#2025",
    ),
}
COOKIE_SAMPLE = ".trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tSESSIONID\tS3cr3tV4lue"


def test_formats_are_exactly_the_published_names() -> None:
    assert FORMATS == (
        "combo",
        "ulp",
        "stealer_passwords",
        "stealer_cookies",
        "csv",
        "jsonl",
        "sql",
    )
    assert set(REASONS) == set(FORMATS)


def test_unknown_format_raises_at_call_time() -> None:
    with pytest.raises(ValueError, match="unknown dump format"):
        parse_lines("xml", iter([]))  # not iterated: the error must come before


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_each_format_parses_its_sample(fmt: str) -> None:
    text, login, password = SAMPLES[fmt]
    records = [i for i in parse_lines(fmt, numbered(text)) if isinstance(i, LeakRecord)]
    assert records, fmt
    assert (records[0].login, records[0].password) == (login, password)


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_repr_never_shows_login_or_password(fmt: str) -> None:
    text, login, password = SAMPLES[fmt]
    record = next(i for i in parse_lines(fmt, numbered(text)) if isinstance(i, LeakRecord))
    shown = repr(record) + str(record)
    assert login not in shown
    assert password not in shown
    assert "line_no" in shown  # the repr is still useful


def test_cookie_hit_keeps_no_cookie_name_or_value() -> None:
    (hit,) = parse_lines("stealer_cookies", numbered(COOKIE_SAMPLE))
    assert isinstance(hit, CookieHit)
    assert CookieHit.__slots__ == ("line_no", "site")
    assert "S3cr3tV4lue" not in repr(hit)
    assert "SESSIONID" not in repr(hit)


SCREENED_FORMATS = [*SAMPLES, "stealer_cookies"]
SCREENING_CASES = [
    ("a@example.jp:" + "x" * (64 * 1024), "too_long"),
    ("a@example.jp:" + "あ" * 30000, "too_long"),  # 90 000 UTF-8 bytes, 30 013 characters
    ("a@example.jp:pa\x00ss", "binary"),
    ("a@example.jp:pa\x1bss", "binary"),
    ("a@example.jp:pa\x85ss", "binary"),  # C1 control: UTF-8 read as latin-1
    ("a@example.jp:pa\udcffss", "undecodable"),
    ("   ", "blank"),
]


@pytest.mark.parametrize(
    ("fmt", "line", "reason"),
    [
        (fmt, line, reason)
        for fmt in SCREENED_FORMATS
        for line, reason in SCREENING_CASES
        if not (fmt == "sql" and reason == "too_long")  # SQL has its own limit: below
    ],
)
def test_screening_reasons_are_shared(fmt: str, line: str, reason: str) -> None:
    items = list(parse_lines(fmt, [(7, line)]))
    assert items == [Rejected(7, reason)]


def test_sql_line_limit_is_16_mib() -> None:
    (item,) = parse_lines("sql", [(1, "-- " + "x" * (16 * 1024 * 1024))])
    assert item == Rejected(1, "too_long")


def test_sql_accepts_a_mysqldump_line_longer_than_64_kib() -> None:
    rows = ",".join(f"({i},'user{i}@example.jp','pw{i}')" for i in range(5000))
    line = f"INSERT INTO users (id, email, password) VALUES {rows};"  # noqa: S608 (dump text)
    assert len(line) > 64 * 1024
    items = list(parse_lines("sql", [(1, line)]))
    assert len(items) == 5000
    assert all(isinstance(i, LeakRecord) for i in items)


def test_tab_is_not_a_control_character() -> None:
    (record,) = parse_lines("combo", [(1, "a@example.jp:pa\tss")])
    assert isinstance(record, LeakRecord)
    assert record.password == "pa\tss"


def test_crlf_residue_and_bom_are_framing_not_data() -> None:
    items = list(parse_lines("combo", [(1, "\ufeffa@example.jp:pw \r"), (2, "b@example.jp:x\r")]))
    assert [(i.login, i.password) for i in items if isinstance(i, LeakRecord)] == [
        ("a@example.jp", "pw "),
        ("b@example.jp", "x"),
    ]


def test_reason_codes_are_snake_case_and_registered() -> None:
    for fmt, reasons in REASONS.items():
        for reason in reasons:
            assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", reason), (fmt, reason)


# --- accounting on generated mixed files ----------------------------------------------------


def _generated_combo_lines(rng: random.Random, n: int) -> list[str]:
    shapes = [
        lambda: (
            f"user{rng.randrange(10**6)}@example{rng.randrange(9)}.jp:Pw{rng.randrange(10**6)}!"
        ),
        lambda: f"ABCD{rng.randrange(10**4):04d}:Momiji!{rng.randrange(100)}",
        lambda: f"jiro{rng.randrange(99)}@example.com:p@ss:w0rd;{rng.randrange(9)}",
        lambda: f"Fuji-San_{rng.randrange(9999)}:hanako{rng.randrange(99)}@example.jp",
        lambda: f"hanako{rng.randrange(999)}@example.jp",
        lambda: "# 証券口座リスト 2025",
        lambda: "",
        lambda: "<br>",
        lambda: "=" * rng.randrange(3, 40),
        lambda: "Seller: @fresh_logs",
        lambda: "a@example.jp:\x00\x01",
        lambda: "x" * 70000,
        lambda: "https://trade.sec.example/login:ABCD1234:Sakura#2025",
        lambda: "justoneword",
        lambda: ":no-login",
    ]
    return [rng.choice(shapes)() for _ in range(n)]


@pytest.mark.parametrize("fmt", ["combo", "ulp"])
def test_every_line_of_a_mixed_list_yields_exactly_one_item(fmt: str) -> None:
    rng = random.Random(20250401)
    lines = _generated_combo_lines(rng, 3000)
    items = list(parse_lines(fmt, numbered("\n".join(lines))))
    assert len(items) == len(lines)
    assert [i.line_no for i in items] == list(range(1, len(lines) + 1))
    reasons = Counter(i.reason for i in items if isinstance(i, Rejected))
    assert set(reasons) <= set(REASONS[fmt])
    # each noise shape was seen and counted, not dropped
    assert {"blank", "comment", "html", "separator", "banner", "binary", "too_long"} <= set(reasons)


def test_cookie_file_accounting() -> None:
    lines = ["# Netscape HTTP Cookie File", COOKIE_SAMPLE, "", "garbage", COOKIE_SAMPLE]
    items = list(parse_lines("stealer_cookies", numbered("\n".join(lines))))
    assert [i.line_no for i in items] == [1, 2, 3, 4, 5]


MULTILINE_SAMPLES = {
    "stealer_passwords": (
        "Seller: @x\n\nURL: https://a.example/\nUsername: u1\nPassword: p1\n=====\n"
        "URL: https://b.example/\nUsername: u2\nPassword: p2\nnoise line\n\nIP: 10.0.0.1"
    ),
    "csv": 'email,password\na@example.jp,"multi\nline"\n\nb@example.jp,x\n,nologin',
    "jsonl": '{"email":"a@example.jp","login_id":"ABCD1234","password":"x"}\n{bad\n\n[1]',
    "sql": (
        "CREATE TABLE users (\n  id int,\n  email text,\n  password text\n);\n"
        "INSERT INTO users VALUES\n(1,'a@example.jp','x'),\n(2,'b@example.jp','multi\nline');\n"
        "COPY users (id, email, password) FROM stdin;\n3\tc@example.jp\tz\n\\.\n-- end"
    ),
}


@pytest.mark.parametrize("fmt", list(MULTILINE_SAMPLES))
def test_items_come_in_line_order_and_cover_the_file(fmt: str) -> None:
    lines = numbered(MULTILINE_SAMPLES[fmt])
    items = list(parse_lines(fmt, lines))
    line_nos = [i.line_no for i in items]
    assert line_nos == sorted(line_nos)
    assert line_nos[0] == 1
    assert set(line_nos) <= {n for n, _ in lines}


def test_detect_then_parse_round_trip() -> None:
    for fmt, (text, _login, _password) in SAMPLES.items():
        head = text.split("\n")
        name = {"csv": "x.csv", "stealer_passwords": "JP[X] [2025]/Passwords.txt"}.get(fmt, "x")
        assert detect_format(name, head) == fmt, fmt


# A file of everything: every format must survive it, in order, with registered reasons only.
TORTURE = "\n".join(
    [
        *(text for text, _l, _p in SAMPLES.values()),
        COOKIE_SAMPLE,
        "#HttpOnly_" + COOKIE_SAMPLE,
        "",
        "   ",
        "# comment",
        "<html><body>",
        "━━━━━━━━━━",
        "Seller: @x",
        "Free Logs: https://t.me/x",
        "URL: https://a.example/",
        "Username: u",
        "Password: NOT_SAVED",
        "IP: 192.0.2.1",
        "{bad json",
        "[1, 2]",
        "email,password",
        'a@example.jp,"open quote',
        "INSERT INTO users (email, password) VALUES ('x@example.jp', 'unterminated",
        "');",
        "COPY t (email) FROM stdin;",
        "c@example.jp",
        "\\.",
        "CREATE TABLE t (",
        "  email text",
        ");",
        "https://[::1/x:y:z",
        "https://trade.sec.example",
        ":nologin",
        "x" * 400 + ":pw",
        "a\x00b",
        "c\udcffd",
        "y" * 70000,
        "hanako@example.jp",
        "ABCD1234",
    ]
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_any_format_survives_any_input(fmt: str) -> None:
    lines = numbered(TORTURE)
    out = list(parse_lines(fmt, lines))
    line_nos = [i.line_no for i in out]
    assert line_nos == sorted(line_nos)
    assert set(line_nos) <= {n for n, _ in lines}
    assert {i.reason for i in out if isinstance(i, Rejected)} <= set(REASONS[fmt])
    if fmt in ("combo", "ulp", "stealer_cookies"):
        assert line_nos == [n for n, _ in lines]
    if fmt == "jsonl":
        assert set(line_nos) == {n for n, _ in lines}
