"""Stealer-log password blocks and Netscape cookie files. Invented values only."""

from __future__ import annotations

import pytest

from exposure.dumps.formats import parse_lines
from exposure.dumps.formats.stealer import label_role
from exposure.dumps.records import CookieHit, LeakRecord, LeakType, Rejected


def numbered(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), 1))


def stealer(text: str) -> list[LeakRecord | Rejected]:
    items = list(parse_lines("stealer_passwords", numbered(text)))
    assert all(isinstance(i, LeakRecord | Rejected) for i in items)
    return items  # type: ignore[return-value]


def records(text: str) -> list[tuple[int, str, str | None, str | None]]:
    return [
        (i.line_no, i.login, i.password, i.site) for i in stealer(text) if isinstance(i, LeakRecord)
    ]


def rejected(text: str) -> list[tuple[int, str]]:
    return [(i.line_no, i.reason) for i in stealer(text) if isinstance(i, Rejected)]


DIALECTS = {
    "redline": "URL: https://trade.sec.example/login\nUsername: ABCD1234\n"
    "Password: Sakura#2025\nApplication: Google_[Chrome]_Default",
    "soft_host": "soft: Google Chrome (Default)\nhost: https://trade.sec.example/\n"
    "login: ABCD1234\npassword: Sakura#2025",
    "hostname": "HOSTNAME: https://trade.sec.example/\nUSER LOGIN: ABCD1234\n"
    "USER PASSWORD: Sakura#2025",
    "leet": "UR1: https://trade.sec.example/\nU53RN4M3: ABCD1234\nP455W0RD: Sakura#2025",
    "short_caps": "HOST: https://trade.sec.example/\nUSER: ABCD1234\nPASS: Sakura#2025\n"
    "Browser: Chrome",
    "any_order_any_case": "pAsSwOrD: Sakura#2025\nstorage: Edge\nusername: ABCD1234\n"
    "url: https://trade.sec.example/",
    "full_width_colon": "URL：https://trade.sec.example/\nUsername：ABCD1234\nPassword：Sakura#2025",
    "japanese_labels": "URL: https://trade.sec.example/\nユーザー名: ABCD1234\n"
    "パスワード: Sakura#2025",
    "log1n": "HOST: https://trade.sec.example/\nLOG1N: ABCD1234\nP4SS: Sakura#2025",
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_every_dialect_gives_one_record(dialect: str) -> None:
    items = stealer(DIALECTS[dialect])
    assert len(items) == 1
    (record,) = items
    assert isinstance(record, LeakRecord)
    assert (record.line_no, record.login, record.password, record.site) == (
        1,
        "ABCD1234",
        "Sakura#2025",
        "trade.sec.example",
    )
    assert record.leak_type is LeakType.STEALER_LOG


@pytest.mark.parametrize(
    ("label", "role"),
    [
        ("URL", "site"),
        ("Host", "site"),
        ("HOSTNAME", "site"),
        ("UR1", "site"),
        ("Username", "login"),
        ("USER", "login"),
        ("LOGIN", "login"),
        ("USER LOGIN", "login"),
        ("U53RN4M3", "login"),
        ("Login_ID", "login"),
        ("E-mail", "login"),
        ("Password", "password"),
        ("PASS", "password"),
        ("USER PASSWORD", "password"),
        ("P455W0RD", "password"),
        ("P@$$W0RD", "password"),
        ("SOFT", "app"),
        ("Browser", "app"),
        ("Application", "app"),
        ("Storage", "app"),
        ("Created", None),
        ("IP", None),
        ("Seller", None),
    ],
)
def test_label_roles(label: str, role: str | None) -> None:
    assert label_role(label) == role


SEPARATED = """Seller: @logs_shop
Free Logs: https://t.me/freelogs_example
*****************************

URL: https://trade.sec.example/login
Username: ABCD1234
Password: Sakura#2025
Application: Google_[Chrome]_Default
===============
URL: https://other.example/
Username: taro@example.jp
Password: Momiji!77
━━━━━━━━━━━━━━━━
URL: https://third.example/
Username: EFGH5678
Password: pw3"""


def test_blocks_separated_by_blank_lines_and_rules() -> None:
    assert records(SEPARATED) == [
        (5, "ABCD1234", "Sakura#2025", "trade.sec.example"),
        (10, "taro@example.jp", "Momiji!77", "other.example"),
        (14, "EFGH5678", "pw3", "third.example"),
    ]
    assert rejected(SEPARATED) == [
        (1, "banner"),
        (2, "banner"),
        (3, "separator"),
        (4, "blank"),
        (9, "separator"),
        (13, "separator"),
    ]


def test_blocks_back_to_back_split_on_a_repeated_label() -> None:
    text = (
        "soft: Chrome\nhost: https://a.example/\nlogin: u1\npassword: p1\n"
        "soft: Edge\nhost: https://b.example/\nlogin: u2\npassword: p2\n"
        "URL: https://c.example/\nUsername: u3\nPassword: p3\n"
        "URL: https://d.example/\nUsername: u4\nPassword: p4"
    )
    assert records(text) == [
        (1, "u1", "p1", "a.example"),
        (5, "u2", "p2", "b.example"),
        (9, "u3", "p3", "c.example"),
        (12, "u4", "p4", "d.example"),
    ]


@pytest.mark.parametrize(
    ("password_line", "expected"),
    [
        ("Password: Sakura#2025", "Sakura#2025"),
        ("Password:  two leading", "two leading"),  # the colon's whitespace is no value's
        ("Password: trailing  ", "trailing  "),
        ("Password:nospace", "nospace"),
        ("Password: pa:ss: word", "pa:ss: word"),
        ("Password: NOT_SAVED", None),
        ("Password: [NOT_SAVED]", None),
        ("Password: (null)", None),
        ("Password: ", None),
        ("Password:", None),
    ],
)
def test_password_values(password_line: str, expected: str | None) -> None:
    text = f"URL: https://trade.sec.example/\nUsername: ABCD1234\n{password_line}"
    assert records(text) == [(1, "ABCD1234", expected, "trade.sec.example")]


def test_block_without_password_field_is_a_record_without_password() -> None:
    assert records("URL: https://trade.sec.example/\nLogin: ABCD1234") == [
        (1, "ABCD1234", None, "trade.sec.example")
    ]


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("android://xY3k+ab/cd==@jp.example.trade/", "jp.example.trade"),
        ("https://[2001:db8::1]:8443/login", "2001:db8::1"),
        ("https://証券.example/", "xn--zcr987k.example"),
        ("trade.sec.example", "trade.sec.example"),
        ("trade.sec.example/login", "trade.sec.example"),
        ("Chrome", None),
        ("UNKNOWN", None),
        ("", None),
    ],
)
def test_site_from_url_field(url: str, site: str | None) -> None:
    text = f"URL: {url}\nUsername: ABCD1234\nPassword: pw"
    assert records(text) == [(1, "ABCD1234", "pw", site)]


def test_unit_accounting() -> None:
    text = (
        "Created: 2025-04-01\n"  # unknown label inside a block: covered by the block
        "URL: https://a.example/\n"
        "Username: u1\n"
        "stray text line\n"  # not a label: its own rejection, after the block's item
        "Password: p1\n"
        "\n"
        "IP: 192.0.2.1\n"  # a block of unknown labels only
        "Country: JP\n"
        "\n"
        "URL: https://b.example/\n"
        "Password: p2\n"  # no login
        "\n"
        "Application: Chrome"  # an application alone
    )
    items = stealer(text)
    assert [(i.line_no, getattr(i, "reason", "record")) for i in items] == [
        (1, "record"),
        (4, "unknown_line"),
        (6, "blank"),
        (7, "no_credential"),
        (8, "no_credential"),
        (9, "blank"),
        (10, "no_login"),
        (12, "blank"),
        (13, "no_credential"),
    ]


def test_screened_lines_inside_a_block_do_not_break_it() -> None:
    text = "URL: https://a.example/\nUsername: u1\n\x00\x00\x00\nPassword: p1"
    items = stealer(text)
    assert [(i.line_no, getattr(i, "reason", "record")) for i in items] == [
        (1, "record"),
        (3, "binary"),
    ]
    assert records(text) == [(1, "u1", "p1", "a.example")]


def test_crlf_residue_in_password_is_removed() -> None:
    text = "URL: https://a.example/\r\nUsername: u1\r\nPassword: p1\r"
    assert records(text) == [(1, "u1", "p1", "a.example")]


# --- cookies -----------------------------------------------------------------------------------

COOKIE_CASES: list[tuple[str, object]] = [
    (".trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tSESSIONID\tv", "trade.sec.example"),
    ("trade.sec.example\tFALSE\t/member\tFALSE\t0\tsid\t", "trade.sec.example"),
    (".Trade.SEC.Example\ttrue\t/\tfalse\t1767225600.5\tn\tv", "trade.sec.example"),
    ("#HttpOnly_.trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tsid\tv", "trade.sec.example"),
    (".証券.example\tTRUE\t/\tTRUE\t1767225600\tsid\tv", "xn--zcr987k.example"),
    (".trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tsid\tva\tlue", "trade.sec.example"),
    ("# Netscape HTTP Cookie File", "comment"),
    ("", "blank"),
    (".trade.sec.example\tTRUE\t/\tTRUE\t1767225600\tsid", "bad_cookie"),  # no value field
    (".trade.sec.example\tYES\t/\tTRUE\t1767225600\tsid\tv", "bad_cookie"),
    (".trade.sec.example\tTRUE\t/\tTRUE\tsoon\tsid\tv", "bad_cookie"),
    (".trade.sec.example TRUE / TRUE 1767225600 sid v", "bad_cookie"),
    ('{"domain": ".trade.sec.example", "name": "sid"}', "bad_cookie"),
    ("bad domain\tTRUE\t/\tTRUE\t1767225600\tsid\tv", "bad_domain"),
    ("\tTRUE\t/\tTRUE\t1767225600\tsid\tv", "bad_domain"),
]


@pytest.mark.parametrize(("line", "expected"), COOKIE_CASES)
def test_cookie_line(line: str, expected: str) -> None:
    (item,) = parse_lines("stealer_cookies", [(3, line)])
    if isinstance(item, CookieHit):
        assert item == CookieHit(3, expected)
    else:
        assert item == Rejected(3, expected)
