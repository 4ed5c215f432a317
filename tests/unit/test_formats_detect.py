"""Format detection from member names and head lines. Invented values only."""

from __future__ import annotations

import pytest

from exposure.dumps.formats import FORMATS, detect_format

STEALER_DIR = "logs.zip!JP[ABC123] [2025-04-01]/"
COOKIE = ".trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tSID\tv"
REDLINE = [
    "URL: https://trade.sec.example/login",
    "Username: ABCD1234",
    "Password: x",
    "Application: Google_[Chrome]_Default",
    "===============",
]

CASES: list[tuple[str, list[str], str | None]] = [
    # combo
    (
        "combo.txt",
        [
            "taro.yamada@example.com:Sakura#2025",
            "ABCD1234:Momiji!77",
            "# list",
            "hanako@example.jp",
        ],
        "combo",
    ),
    ("list.txt", ["a@example.jp;x", "b@example.jp|y", "c@example.jp\tz"], "combo"),
    ("emails.txt", ["hanako@example.jp", "taro@example.jp"], "combo"),
    ("dump.zip!passwords.txt", ["a@example.jp:pw1", "b@example.jp:pw2"], "combo"),
    (
        "mixed.txt",
        ["a@example.jp:pw", "https://trade.sec.example/:ABCD1234:pw", "b@example.jp:pw"],
        "combo",
    ),
    # ULP
    (
        "ulp.txt",
        [
            "https://trade.sec.example/login:ABCD1234:Sakura#2025",
            "android://xY3k==@jp.example.trade/:ABCD1234:pw",
            "https://[2001:db8::1]/login:ABCD1234:pw",
        ],
        "ulp",
    ),
    ("hosts.txt", ["trade.sec.example:ABCD1234:pw", "other.example:EFGH5678:pw2"], "ulp"),
    ("spaces.txt", ["https://trade.sec.example/login ABCD1234 pw"], "ulp"),
    # stealer password files, by name and by content
    (STEALER_DIR + "Passwords.txt", REDLINE, "stealer_passwords"),
    (
        STEALER_DIR + "All Passwords.txt",
        ["Seller: @x", "Free Logs: https://t.me/x", "*****"],
        "stealer_passwords",
    ),
    (
        STEALER_DIR + "passwords[Chrome].txt",
        ["soft: Chrome", "host: https://a.example/", "login: a", "password: b"],
        "stealer_passwords",
    ),
    (STEALER_DIR + "Browsers/_AllPasswords_list.txt", REDLINE, "stealer_passwords"),
    ("unnamed.txt", REDLINE * 3, "stealer_passwords"),
    (
        "leet.txt",
        ["UR1: https://a.example/", "U53RN4M3: a", "P455W0RD: b", ""],
        "stealer_passwords",
    ),
    # cookies
    (
        STEALER_DIR + "Cookies/Chrome_Default.txt",
        ["# Netscape HTTP Cookie File", COOKIE],
        "stealer_cookies",
    ),
    (STEALER_DIR + "cookies.txt", [COOKIE, COOKIE], "stealer_cookies"),
    ("anything.txt", [COOKIE, COOKIE, COOKIE], "stealer_cookies"),
    ("folder\\Cookies\\Edge.txt", ["#HttpOnly_" + COOKIE], "stealer_cookies"),
    # not credential files
    (STEALER_DIR + "UserInformation.txt", ["IP: 192.0.2.1", "Login: user", "Password: x"], None),
    (STEALER_DIR + "Autofills/Google Chrome_Default.txt", ["Name: email", "Value: a@b.jp"], None),
    (STEALER_DIR + "Autofills.txt", ["Name: email", "Value: a@b.jp"], None),
    (STEALER_DIR + "History/Chrome.txt", ["https://trade.sec.example/:x:y"], None),
    # tables
    ("users.csv", ["メールアドレス,パスワード,ログインID", "a@example.jp,pw,ABCD"], "csv"),
    ("users.txt", ["email;password", "a@example.jp;pw"], "csv"),
    ("users.dat", ['"login_id"\t"pass"', "ABCD1234\tpw"], "csv"),
    ("export.csv", ["顧客リスト 2025年4月", "", "ログインID,パスワード", "ABCD1234,pw"], "csv"),
    (
        "dump.jsonl",
        ['{"email": "a@example.jp", "password": "x"}', '{"email": "b@example.jp"}'],
        "jsonl",
    ),
    ("dump.json", ["[", '{"email": "a@example.jp", "password": "x"},', "]"], "jsonl"),
    # SQL
    ("dump.sql", ["-- MySQL dump 10.13", "INSERT INTO users VALUES (1,'a','b');"], "sql"),
    ("pg.sql", ["--", "-- PostgreSQL database dump", "--", "SET statement_timeout = 0;"], "sql"),
    ("x.txt", ["COPY public.users (id, email) FROM stdin;", "1\ta@example.jp"], "sql"),
    ("schema.sql", ["/* nothing recognisable */"], "sql"),
    # nothing to say
    ("bin.dat", ["\x00\x01\x02", "\x00abc", "PK\x03\x04"], None),
    ("empty.txt", [], None),
    ("blank.txt", ["", "  "], None),
    ("readme.txt", ["Hello, this is a readme.", "Nothing to see here."], None),
    ("people.csv", ["name,address", "山田太郎,東京都"], None),
]


@pytest.mark.parametrize(("name", "head", "expected"), CASES)
def test_detect_format(name: str, head: list[str], expected: str | None) -> None:
    assert detect_format(name, head) == expected


def test_detection_only_returns_known_formats() -> None:
    assert {expected for _n, _h, expected in CASES} - {None} == set(FORMATS)


def test_bom_on_the_first_line_does_not_hide_a_header() -> None:
    assert detect_format("x.csv", ["\ufeffemail,password", "a@example.jp,x"]) == "csv"
