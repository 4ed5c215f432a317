"""Combo and URL:login:password lines: every shape and trap of docs/formats.md. Invented values."""

from __future__ import annotations

import re

import pytest

from exposure.dumps.formats import parse_lines, ulp
from exposure.dumps.formats.combo import parse_combo_line
from exposure.dumps.formats.ulp import parse_ulp_line
from exposure.dumps.records import LeakRecord, LeakType, Rejected

COMBO, ULP = LeakType.COMBO, LeakType.ULP


def parse_one(fmt: str, line: str) -> LeakRecord | Rejected:
    (item,) = parse_lines(fmt, [(1, line)])
    assert isinstance(item, LeakRecord | Rejected)
    return item


def as_tuple(item: LeakRecord | Rejected) -> tuple[object, ...]:
    if isinstance(item, Rejected):
        return ("rejected", item.reason)
    return (item.login, item.password, item.leak_type, item.site, item.ambiguous)


# (line, expected): expected is (login, password, leak_type, site, ambiguous) or
# ("rejected", reason).
COMBO_CASES: list[tuple[str, tuple[object, ...]]] = [
    # docs/formats.md, line by line
    (
        "taro.yamada@example.com:Sakura#2025",
        ("taro.yamada@example.com", "Sakura#2025", COMBO, None, False),
    ),
    (
        "taro.yamada@example.com;Sakura#2025",
        ("taro.yamada@example.com", "Sakura#2025", COMBO, None, False),
    ),
    (
        "taro.yamada@example.com|Sakura#2025",
        ("taro.yamada@example.com", "Sakura#2025", COMBO, None, False),
    ),
    (
        "taro.yamada@example.com\tSakura#2025",
        ("taro.yamada@example.com", "Sakura#2025", COMBO, None, False),
    ),
    (
        "TARO.YAMADA@Example.COM:Sakura#2025",  # case is kept: normalising is not parsing
        ("TARO.YAMADA@Example.COM", "Sakura#2025", COMBO, None, False),
    ),
    ("ABCD1234:Momiji!77", ("ABCD1234", "Momiji!77", COMBO, None, False)),
    ("jiro@example.com:p@ss:w0rd;x", ("jiro@example.com", "p@ss:w0rd;x", COMBO, None, False)),
    ("Fuji-San_3776:hanako@example.jp", ("hanako@example.jp", "Fuji-San_3776", COMBO, None, True)),
    ("hanako@example.jp", ("hanako@example.jp", None, COMBO, None, False)),
    ("# 証券口座リスト 2025", ("rejected", "comment")),
    # first delimiter of any kind wins
    ("jiro@example.com;pa:ss", ("jiro@example.com", "pa:ss", COMBO, None, False)),
    ("jiro@example.com|pa;ss:x", ("jiro@example.com", "pa;ss:x", COMBO, None, False)),
    ("090-1234-5678:Tsubaki|9", ("090-1234-5678", "Tsubaki|9", COMBO, None, False)),
    # passwords are never normalised; whitespace next to the delimiter is the delimiter's
    ("a@example.jp:  spaced  ", ("a@example.jp", "spaced  ", COMBO, None, False)),
    ("a@example.jp:ＡＢＣ　１２３", ("a@example.jp", "ＡＢＣ　１２３", COMBO, None, False)),
    ("a@example.jp:桜さくら2025", ("a@example.jp", "桜さくら2025", COMBO, None, False)),
    (
        "a@example.jp:$2b$12$abcdefghijklmnopqrstuv",  # a hash is passed on: not our decision
        ("a@example.jp", "$2b$12$abcdefghijklmnopqrstuv", COMBO, None, False),
    ),
    (
        "a@example.jp:5f4dcc3b5aa765d61d8327deb882cf99",
        ("a@example.jp", "5f4dcc3b5aa765d61d8327deb882cf99", COMBO, None, False),
    ),
    ("  a@example.jp  :pw", ("a@example.jp", "pw", COMBO, None, False)),
    ("a@example.jp:", ("a@example.jp", None, COMBO, None, False)),
    # Japanese carrier addresses that break the RFC are real
    ("taro..yamada.@docomo.ne.jp:pw", ("taro..yamada.@docomo.ne.jp", "pw", COMBO, None, False)),
    ("hanako.@ezweb.ne.jp", ("hanako.@ezweb.ne.jp", None, COMBO, None, False)),
    # reversed, and lines that could be reversed
    ("#Sakura2025:hanako@example.jp", ("hanako@example.jp", "#Sakura2025", COMBO, None, True)),
    ("ABCD1234:x;hanako@example.jp", ("ABCD1234", "x;hanako@example.jp", COMBO, None, True)),
    ("ABCD1234:p@ss", ("ABCD1234", "p@ss", COMBO, None, False)),
    # URL lines inside a combo list are ULP records
    (
        "https://trade.sec.example/login:ABCD1234:Sakura#2025",
        ("ABCD1234", "Sakura#2025", ULP, "trade.sec.example", False),
    ),
    # logins that happen to be banner words are still logins
    ("support:Passw0rd", ("support", "Passw0rd", COMBO, None, False)),
    ("shop:Ab12", ("shop", "Ab12", COMBO, None, False)),
    # noise
    ("", ("rejected", "blank")),
    ("\t ", ("rejected", "blank")),
    ("// exported 2025-04-01", ("rejected", "comment")),
    ("## 2025", ("rejected", "comment")),
    ("-- dump", ("rejected", "comment")),
    ("#nodelimiter", ("rejected", "comment")),
    ("<html>", ("rejected", "html")),
    ("</td></tr>", ("rejected", "html")),
    ('<a href="https://t.me/x">join</a>', ("rejected", "html")),
    ("<!DOCTYPE html>", ("rejected", "html")),
    ("==========", ("rejected", "separator")),
    ("━━━━━━━━━━", ("rejected", "separator")),
    ("*** *** ***", ("rejected", "separator")),
    ("Seller: @fresh_logs_jp", ("rejected", "banner")),
    ("Free Logs: https://t.me/freelogs", ("rejected", "banner")),
    ("Telegram: t.me/logs_channel", ("rejected", "banner")),
    ("Join our channel t.me/logs", ("rejected", "banner")),
    ("https://t.me/freelogs", ("rejected", "banner")),
    (":Sakura#2025", ("rejected", "no_login")),
    ("ABCD1234", ("rejected", "no_delimiter")),
    ("some words without a delimiter", ("rejected", "no_delimiter")),
    ("a@example", ("rejected", "no_delimiter")),  # no dot: not an address
    ("user@x.com,pass", ("rejected", "no_delimiter")),  # ',' is not a combo delimiter
    ("x" * 400 + ":pw", ("rejected", "bad_login")),
]


@pytest.mark.parametrize(("line", "expected"), COMBO_CASES)
def test_combo_line(line: str, expected: tuple[object, ...]) -> None:
    assert as_tuple(parse_one("combo", line)) == expected


def test_combo_records_carry_line_number_and_no_site_or_pin() -> None:
    items = list(parse_lines("combo", [(41, "a@example.jp:x"), (42, "ABCD1234:y")]))
    assert [(i.line_no, i.site, i.has_pin) for i in items if isinstance(i, LeakRecord)] == [
        (41, None, False),
        (42, None, False),
    ]


@pytest.mark.parametrize(
    "line",
    [line for line, expected in COMBO_CASES if expected[0] != "rejected" and "://" not in line],
)
def test_combo_fast_path_agrees_with_the_full_grammar(line: str) -> None:
    assert as_tuple(parse_one("combo", line)) == as_tuple(parse_combo_line(1, line))


ULP_CASES: list[tuple[str, tuple[object, ...]]] = [
    # docs/formats.md, line by line
    (
        "https://trade.sec.example/login:ABCD1234:Sakura#2025",
        ("ABCD1234", "Sakura#2025", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example:8443/member/login.do:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    ("https://[2001:db8::1]/login:ABCD1234:pw", ("ABCD1234", "pw", ULP, "2001:db8::1", False)),
    (
        "android://xY3k...==@jp.example.trade/:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "jp.example.trade", False),
    ),
    ("trade.sec.example:ABCD1234:pw", ("ABCD1234", "pw", ULP, "trade.sec.example", True)),
    # all the rest is the password
    (
        "https://trade.sec.example/login:ABCD1234:Saku:ra|x y ",
        ("ABCD1234", "Saku:ra|x y ", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login:hanako@example.jp:pw",
        ("hanako@example.jp", "pw", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login:ABCD1234:",
        ("ABCD1234", None, ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login:ABCD1234",
        ("ABCD1234", None, ULP, "trade.sec.example", False),
    ),
    # hosts: case, trailing dot, IDN, full-width dot, IPv4, IPv6 forms, user info
    (
        "HTTPS://Trade.SEC.Example./x:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    (
        "https://証券.example/login:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "xn--zcr987k.example", False),
    ),
    (
        "https://trade。sec。example/login:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    ("http://192.0.2.10:8080/login:ABCD1234:pw", ("ABCD1234", "pw", ULP, "192.0.2.10", False)),
    ("https://[2001:DB8:0:0::1]:8443/:ABCD1234:pw", ("ABCD1234", "pw", ULP, "2001:db8::1", False)),
    (
        "https://someone@trade.sec.example/login:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    # android facets whose hash holds '/' and '+'
    (
        "android://ab/cd+ef==@com.example.app/:user@example.com:pw",
        ("user@example.com", "pw", ULP, "com.example.app", False),
    ),
    # ports versus numeric logins
    (
        "https://trade.sec.example:8443:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", True),
    ),
    ("https://trade.sec.example:12345678:pw", ("12345678", "pw", ULP, "trade.sec.example", False)),
    ("https://trade.sec.example:1234:pw", ("1234", "pw", ULP, "trade.sec.example", False)),
    ("https://trade.sec.example:ABCD1234:pw", ("ABCD1234", "pw", ULP, "trade.sec.example", False)),
    # '://' inside the query stays in the URL
    (
        "https://trade.sec.example/login?next=https://trade.sec.example/home:ABCD1234:pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    # other separators
    (
        "https://trade.sec.example/login ABCD1234 pass word",
        ("ABCD1234", "pass word", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login\tABCD1234\tpw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login|ABCD1234|pw|x",
        ("ABCD1234", "pw|x", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login | ABCD1234 | pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    (
        "https://trade.sec.example/login: ABCD1234: pw",
        ("ABCD1234", "pw", ULP, "trade.sec.example", False),
    ),
    # a login with '/' suggests a path that held ':'
    (
        "https://wiki.example/Special:Login:ABCD1234:pw",
        ("Login", "ABCD1234:pw", ULP, "wiki.example", False),
    ),
    ("https://wiki.example/a:b/c:ABCD1234:pw", ("b/c", "ABCD1234:pw", ULP, "wiki.example", True)),
    # combo lines inside a ULP list stay combo records
    ("taro@example.jp:Sakura#2025", ("taro@example.jp", "Sakura#2025", COMBO, None, False)),
    ("taro.yamada:Sakura2025", ("taro.yamada", "Sakura2025", COMBO, None, False)),
    ("taro.yamada:Sakura:2025", ("Sakura", "2025", ULP, "taro.yamada", True)),
    # rejections
    ("https://trade.sec.example/login", ("rejected", "no_login")),
    ("https://trade.sec.example/login::pw", ("rejected", "no_login")),
    ("https://t.me/freelogs", ("rejected", "banner")),
    ("https://[2001:db8::1/login:ABCD1234:pw", ("rejected", "bad_url")),
    ("# URL:LOGIN:PASS", ("rejected", "comment")),
    ("", ("rejected", "blank")),
]


@pytest.mark.parametrize(("line", "expected"), ULP_CASES)
def test_ulp_line(line: str, expected: tuple[object, ...]) -> None:
    assert as_tuple(parse_one("ulp", line)) == expected


@pytest.mark.parametrize(
    "line", [line for line, expected in ULP_CASES if expected[0] != "rejected"]
)
def test_ulp_fast_path_agrees_with_the_full_grammar(
    line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_fast = as_tuple(parse_one("ulp", line))
    monkeypatch.setattr(ulp, "_FAST", re.compile(r"(?!)"))  # never matches
    assert as_tuple(parse_one("ulp", line)) == with_fast


def test_ulp_grammar_declines_lines_without_url() -> None:
    assert parse_ulp_line(1, "taro@example.jp:pw") is None
    assert parse_ulp_line(1, "ABCD1234:Momiji!77") is None


def test_indented_ulp_line_is_read() -> None:
    item = parse_one("ulp", "   https://trade.sec.example/:ABCD1234:pw")
    assert as_tuple(item) == ("ABCD1234", "pw", ULP, "trade.sec.example", False)
