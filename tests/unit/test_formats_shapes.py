"""The line shapes of real compilations (docs/formats.md, "Messy lines from compilations", and the
stealer dialects), each read to the right (login, password, site) records by the Python
rules and by the native fast path alike. Invented values only."""

from __future__ import annotations

import pytest

from exposure.dumps.decode import TextBlock
from exposure.dumps.fastpath import RecordBlock, iter_blocks
from exposure.dumps.formats import parse_lines
from exposure.dumps.records import LeakRecord, Rejected

Reading = tuple[str, str | None, str | None] | str  # (login, password, site) or a reason

SHAPES: list[tuple[str, list[Reading]]] = [
    # Whitespace around a separator belongs to no field (docs/decisions/separator-whitespace.md).
    ("hanako@example.jp | Sakura#2025", [("hanako@example.jp", "Sakura#2025", None)]),
    ("hanako@example.jp : Sakura#2025", [("hanako@example.jp", "Sakura#2025", None)]),
    ("hanako@example.jp:  Sakura 2025  ", [("hanako@example.jp", "Sakura 2025  ", None)]),
    ("ABCD1234 ;Momiji!77", [("ABCD1234", "Momiji!77", None)]),
    ("hanako@example.jp：Sakura#2025", [("hanako@example.jp", "Sakura#2025", None)]),
    (
        "https://trade.sec.example/login : ABCD1234 : Sakura#2025",
        [("ABCD1234", "Sakura#2025", "trade.sec.example")],
    ),
    (
        "https://trade.sec.example/login:ABCD1234: Sakura#2025",
        [("ABCD1234", "Sakura#2025", "trade.sec.example")],
    ),
    # ULP with ';'
    (
        "https://trade.sec.example/login;hanako@example.jp;Sakura#2025",
        [("hanako@example.jp", "Sakura#2025", "trade.sec.example")],
    ),
    (
        "https://trade.sec.example;ABCD1234;Sakura;2025",
        [("ABCD1234", "Sakura;2025", "trade.sec.example")],
    ),
    (
        "https://trade.sec.example/login;jsessionid=9F;ABCD1234;pw",
        [("ABCD1234", "pw", "trade.sec.example")],
    ),
    # The e-mail is not the first field: every identifier, the password after the e-mail.
    (
        "taro_y:2019-04-01:hanako@example.jp:Sakura#2025",
        [("taro_y", "Sakura#2025", None), ("hanako@example.jp", "Sakura#2025", None)],
    ),
    (
        "taro_y:::2019-04-01:hanako@example.jp:Sa:kura",
        [("taro_y", "Sa:kura", None), ("hanako@example.jp", "Sa:kura", None)],
    ),
    (
        "42\ttaro_y\thanako@example.jp\t203.0.113.9\t5f4dcc3b5aa765d61d8327deb882cf99",
        [
            ("taro_y", "5f4dcc3b5aa765d61d8327deb882cf99", None),
            ("hanako@example.jp", "5f4dcc3b5aa765d61d8327deb882cf99", None),
        ],
    ),
    (
        "2019-04-01;42;hanako@example.jp:5f4dcc3b5aa765d61d8327deb882cf99",
        [("hanako@example.jp", "5f4dcc3b5aa765d61d8327deb882cf99", None)],
    ),
    (
        "taro_y:2019-04-01:hanako@example.jp",
        [("taro_y", None, None), ("hanako@example.jp", None, None)],
    ),
    # A TAB row with two candidate passwords: no password rather than a guessed one.
    ("hanako@example.jp\tSakura\tTaro", [("hanako@example.jp", None, None)]),
    # Two identifiers in one line
    (
        "hanako@example.jp:taro@example.jp:Sakura#2025",
        [("hanako@example.jp", "Sakura#2025", None), ("taro@example.jp", "Sakura#2025", None)],
    ),
    (
        "hanako@example.jp;taro@example.jp:Sakura#2025",
        [("hanako@example.jp", "Sakura#2025", None), ("taro@example.jp", "Sakura#2025", None)],
    ),
    (
        "hanako@example.jp:taro@example.jp",
        [("hanako@example.jp", None, None), ("taro@example.jp", None, None)],
    ),
    # ... but an '@' inside a password is still a password.
    ("jiro@example.com:p@ss:w0rd;x", [("jiro@example.com", "p@ss:w0rd;x", None)]),
    # One-line stealer records; Location: and Origin: name the site.
    (
        "URL: https://trade.sec.example/login | USER: ABCD1234 | PASS: Sakura#2025",
        [("ABCD1234", "Sakura#2025", "trade.sec.example")],
    ),
    (
        "Origin: https://trade.sec.example | Login: hanako@example.jp | Password: a | b",
        [("hanako@example.jp", "a | b", "trade.sec.example")],
    ),
    # An address whose local part looks like a host is no URL line, in a URL list too.
    ("taro.yamada@example.com:Sakura#2025", [("taro.yamada@example.com", "Sakura#2025", None)]),
    # Placeholder logins are no logins.
    ("UNKNOWN:Sakura#2025", ["placeholder_login"]),
    ("-:Sakura#2025", ["placeholder_login"]),
    ("N/A;Sakura#2025", ["placeholder_login"]),
    ("https://trade.sec.example/login:Unknown:Sakura#2025", ["placeholder_login"]),
    ("https://trade.sec.example/login:null:Sakura#2025", ["placeholder_login"]),
    ("URL: https://trade.sec.example | USER: none | PASS: x", ["placeholder_login"]),
]


def _reading(items: list[LeakRecord | Rejected]) -> list[Reading]:
    return [(i.login, i.password, i.site) if isinstance(i, LeakRecord) else i.reason for i in items]


def _native(fmt: str, line: str) -> list[LeakRecord | Rejected]:
    data = (line + "\n").encode()
    items: list[LeakRecord | Rejected] = []
    for item in iter_blocks(fmt, [TextBlock(1, data, 1, 0, len(data))]):
        if isinstance(item, RecordBlock):
            items.extend(item.record(i) for i in range(item.count))
        else:
            assert isinstance(item, LeakRecord | Rejected)
            items.append(item)
    return items


@pytest.mark.parametrize("fmt", ["combo", "ulp"])
@pytest.mark.parametrize(("line", "expected"), SHAPES)
def test_each_shape_reads_the_same_on_both_paths(
    fmt: str, line: str, expected: list[Reading]
) -> None:
    python = list(parse_lines(fmt, [(1, line)]))
    assert all(isinstance(i, LeakRecord | Rejected) for i in python)
    assert _reading(python) == expected  # type: ignore[arg-type]
    assert _native(fmt, line) == python


def test_plain_lines_still_take_the_native_path() -> None:
    """The shapes above cost the plain line nothing: an e-mail first and a URL line with a
    padded separator are still settled natively."""
    text = (
        "hanako@example.jp : Sakura#2025\nhttps://trade.sec.example/x:ABCD1234: pw\n"
        "taro@example.jp:p@ssw0rd:x\n"  # an '@' that cannot start an address
    )
    data = text.encode()
    blocks = [
        item
        for item in iter_blocks("combo", [TextBlock(1, data, 3, 0, len(data))])
        if isinstance(item, RecordBlock)
    ]
    assert [b.record(i).password for b in blocks for i in range(b.count)] == [
        "Sakura#2025",
        "pw",
        "p@ssw0rd:x",
    ]


def test_stealer_blocks_reject_placeholder_logins_and_read_location() -> None:
    text = [
        "URL: https://a.example/",
        "Username: UNKNOWN",
        "Password: x",
        "",
        "Location: https://trade.sec.example/login",
        "Username: ABCD1234",
        "Password:   Sakura#2025 ",
        "",
        "URL: https://b.example/ | USER: u1 | PASS: p1",
        "Username: N/A",
        "Password: y",
    ]
    items = list(parse_lines("stealer_passwords", list(enumerate(text, 1))))
    assert [
        (i.line_no, i.login, i.password, i.site)
        if isinstance(i, LeakRecord)
        else (i.line_no, i.reason)
        for i in items
    ] == [
        (1, "placeholder_login"),
        (4, "blank"),
        (5, "ABCD1234", "Sakura#2025 ", "trade.sec.example"),
        (8, "blank"),
        (9, "u1", "p1", "b.example"),
        (10, "placeholder_login"),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [("NULL,pw\n", "placeholder_login"), ("N/A,pw\n", "placeholder_login"), (",pw\n", "no_login")],
)
def test_table_rows_without_a_real_identifier_are_rejected(row: str, reason: str) -> None:
    lines = list(enumerate(["email,password", row.rstrip("\n")], 1))
    items = list(parse_lines("csv", lines))
    assert items[-1] == Rejected(2, reason)
