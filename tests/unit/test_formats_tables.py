"""CSV, JSON lines and SQL dumps. Invented values only."""

from __future__ import annotations

import pytest

from exposure.dumps.formats import parse_lines
from exposure.dumps.formats.columns import column_role
from exposure.dumps.records import LeakRecord, LeakType, Rejected

Row = tuple[int, str, str | None]


def numbered(text: str) -> list[tuple[int, str]]:
    return list(enumerate(text.split("\n"), 1))


def items(fmt: str, text: str, name: str = "") -> list[LeakRecord | Rejected]:
    out = list(parse_lines(fmt, numbered(text), member_name=name))
    assert all(isinstance(i, LeakRecord | Rejected) for i in out)
    return out  # type: ignore[return-value]


def recs(fmt: str, text: str, name: str = "") -> list[Row]:
    return [
        (i.line_no, i.login, i.password)
        for i in items(fmt, text, name)
        if isinstance(i, LeakRecord)
    ]


def rejs(fmt: str, text: str, name: str = "") -> list[tuple[int, str]]:
    return [(i.line_no, i.reason) for i in items(fmt, text, name) if isinstance(i, Rejected)]


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("email", "identifier"),
        ("E-Mail", "identifier"),
        ("メールアドレス", "identifier"),
        ("ｍａｉｌ", "identifier"),
        ("login_id", "identifier"),
        ("ログインID", "identifier"),
        ("ログインＩＤ", "identifier"),
        ("username", "identifier"),
        ("口座番号", "identifier"),
        ("電話番号", "identifier"),
        ("phone", "identifier"),
        ("`user_name`", "identifier"),
        ("password", "password"),
        ("pass", "password"),
        ("パスワード", "password"),
        ("password_hash", "hash"),
        ("取引暗証番号", "pin"),
        ("pin", "pin"),
        ("url", "site"),
        ("site", "site"),
        ("name", None),
        ("住所", None),
        ("id", None),
        ("\ufeffemail", "identifier"),
    ],
)
def test_column_roles(name: str, role: str | None) -> None:
    assert column_role(name) == role


# --- CSV -------------------------------------------------------------------------------------


def test_csv_japanese_header_one_record_per_identifier_and_pin() -> None:
    text = (
        "メールアドレス,パスワード,ログインID,取引暗証番号,氏名\n"
        "taro@example.jp,Sakura#2025,ABCD1234,1234,山田太郎\n"
        ",Momiji!77,EFGH5678,,鈴木花子\n"
        "jiro@example.jp,,,,\n"
        ",pw,,,"
    )
    out = items("csv", text)
    assert [
        (i.line_no, i.login, i.password, i.has_pin) for i in out if isinstance(i, LeakRecord)
    ] == [
        (2, "taro@example.jp", "Sakura#2025", True),
        (2, "ABCD1234", "Sakura#2025", True),
        (3, "EFGH5678", "Momiji!77", False),
        (4, "jiro@example.jp", None, False),
    ]
    assert rejs("csv", text) == [(1, "header"), (5, "no_login")]
    assert all(i.leak_type is LeakType.BREACH_RECORD for i in out if isinstance(i, LeakRecord))


def test_csv_quoted_fields_with_delimiters_quotes_and_newlines() -> None:
    text = (
        "email,password,note\n"
        'a@example.jp,"Sa,ku""ra",x\n'
        'b@example.jp,"two\nlines",y\n'
        'c@example.jp,plain,"note\nover\nthree"\n'
        'd@example.jp," spaced ",z'
    )
    assert recs("csv", text) == [
        (2, "a@example.jp", 'Sa,ku"ra'),
        (3, "b@example.jp", "two\nlines"),
        (5, "c@example.jp", "plain"),
        (8, "d@example.jp", " spaced "),
    ]
    # lines 4, 6 and 7 belong to multi-line rows: covered, not rejected
    assert rejs("csv", text) == [(1, "header")]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("email;password\na@example.jp;pa,ss", ""),
        ("email\tpassword\na@example.jp\tpa,ss", ""),
        ("email\tpassword\na@example.jp\tpa,ss", "dump.tsv"),
        ('"email","password"\n"a@example.jp","pa,ss"', ""),
        ("username,pass\na@example.jp,pa,ss", ""),  # unquoted ',' in the last column
    ],
)
def test_csv_delimiters(text: str, name: str) -> None:
    assert recs("csv", text, name) == [(2, "a@example.jp", "pa,ss")]


def test_csv_extra_cells_joined_into_last_column_password_are_ambiguous() -> None:
    (record,) = [
        i for i in items("csv", "email,password\na@example.jp,pa,ss") if isinstance(i, LeakRecord)
    ]
    assert record.ambiguous
    (clean,) = [
        i for i in items("csv", "email,password\na@example.jp,pass") if isinstance(i, LeakRecord)
    ]
    assert not clean.ambiguous


def test_csv_unterminated_quote_is_read_literally_and_the_file_goes_on() -> None:
    text = 'email,password\na@example.jp,"Sakura\nb@example.jp,Momiji\nc@example.jp,x'
    out = items("csv", text)
    assert [
        (i.line_no, i.login, i.password, i.ambiguous) for i in out if isinstance(i, LeakRecord)
    ] == [
        (2, "a@example.jp", '"Sakura', True),
        (3, "b@example.jp", "Momiji", False),
        (4, "c@example.jp", "x", False),
    ]


def test_csv_open_quote_is_not_joined_into_a_row_of_the_wrong_width() -> None:
    # Joined, lines 2-3 would parse as one 4-cell row; the header has 2 columns.
    text = 'email,password\na@example.jp,"Sakura\nb@example.jp",x,y'
    assert recs("csv", text) == [(2, "a@example.jp", '"Sakura'), (3, 'b@example.jp"', "x,y")]


def test_csv_header_repeats_blank_lines_comments_site_and_hash_columns() -> None:
    text = (
        "email,password_hash,password,url\n\n# part 2\nemail,password_hash,password,url\n"
        "a@example.jp,$2b$12$abcdefghijklmnopqrstuv,,https://Trade.Sec.Example/login\n"
        "b@example.jp,5f4dcc3b5aa765d61d8327deb882cf99,plain,"
    )
    out = [i for i in items("csv", text) if isinstance(i, LeakRecord)]
    assert [(i.login, i.password, i.site) for i in out] == [
        ("a@example.jp", "$2b$12$abcdefghijklmnopqrstuv", "trade.sec.example"),
        ("b@example.jp", "plain", None),  # plain-text column preferred over the hash column
    ]
    assert rejs("csv", text) == [(1, "header"), (2, "blank"), (3, "comment"), (4, "header")]


def test_csv_without_identifier_column_rejects_every_line() -> None:
    text = "name,address\n山田太郎,東京都\n鈴木花子,大阪府"
    assert rejs("csv", text) == [(1, "no_header"), (2, "no_header"), (3, "no_header")]


def test_csv_title_rows_before_the_header_are_preamble() -> None:
    text = "顧客リスト 2025年4月\n\n作成: 営業部;社外秘\nログインID,パスワード\nABCD1234,Momiji!77"
    assert recs("csv", text) == [(5, "ABCD1234", "Momiji!77")]
    assert rejs("csv", text) == [(1, "preamble"), (2, "blank"), (3, "preamble"), (4, "header")]


def test_csv_gives_up_looking_for_a_header_after_a_few_rows() -> None:
    text = "\n".join(f"a{i}@example.jp,pw{i}" for i in range(8))
    assert rejs("csv", text) == [(n, "no_header") for n in range(1, 9)]
    assert rejs("csv", "title\n\nnote") == [(1, "no_header"), (2, "blank"), (3, "no_header")]


def test_csv_headerless_combo_is_not_silently_read() -> None:
    assert rejs("csv", "a@example.jp,pw\nb@example.jp,pw2") == [(1, "no_header"), (2, "no_header")]


# --- JSON lines ------------------------------------------------------------------------------


def test_jsonl_keys_values_and_bad_lines() -> None:
    text = "\n".join(
        [
            '{"Email": "a@example.jp", "PASSWORD": "Sakura#2025", "Login_ID": 12345678}',
            '{"email": "b@example.jp", "pass": "x", "pin": "1234", "url": "https://trade.sec.example/"}',
            "{bad json",
            '{"user": {"email": "c@example.jp"}, "password": "y"}',
            '["a@example.jp", "pw"]',
            '{"name": "山田太郎"}',
            "",
            '{"email": "d@example.jp", "password": null, "active": true}',
            '{"email": "e@example.jp", "password": "z"}',
        ]
    )
    out = items("jsonl", text)
    assert [
        (i.line_no, i.login, i.password, i.has_pin, i.site)
        for i in out
        if isinstance(i, LeakRecord)
    ] == [
        (1, "a@example.jp", "Sakura#2025", False, None),
        (1, "12345678", "Sakura#2025", False, None),
        (2, "b@example.jp", "x", True, "trade.sec.example"),
        (4, "c@example.jp", "y", False, None),
        (8, "d@example.jp", None, False, None),
        (9, "e@example.jp", "z", False, None),
    ]
    assert rejs("jsonl", text) == [
        (3, "bad_json"),
        (5, "not_object"),
        (6, "no_login"),
        (7, "blank"),
    ]


def test_jsonl_pretty_printed_array() -> None:
    text = '[\n{"email": "a@example.jp", "password": "x"},\n{"email": "b@example.jp"}\n]'
    assert recs("jsonl", text) == [(2, "a@example.jp", "x"), (3, "b@example.jp", None)]
    assert rejs("jsonl", text) == [(1, "json_wrapper"), (4, "json_wrapper")]


def test_jsonl_password_kept_exactly() -> None:
    text = '{"email": "a@example.jp", "password": " \\u3000pa\\"ss\\\\ "}'
    assert recs("jsonl", text) == [(1, "a@example.jp", ' \u3000pa"ss\\ ')]


# --- SQL -------------------------------------------------------------------------------------

MYSQL = r"""-- MySQL dump 10.13  Distrib 8.0.36
/*!40101 SET NAMES utf8mb4 */;
CREATE TABLE `users` (
  `id` int NOT NULL,
  `email` varchar(255) COMMENT 'e-mail, primary (login)',
  `password` varchar(255),
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
LOCK TABLES `users` WRITE;
INSERT INTO `users` VALUES (1,'taro@example.jp','it\'s'),(2,'hanako@example.jp','O''Brien'),
(3,NULL,'x');
INSERT INTO `users` (`id`,`email`,`password`) VALUES
(4,'jiro@example.jp','multi
line'),
(5,'saburo@example.jp',_utf8mb4'pw5'),(6,'a@example.jp',UNHEX('41')),(7,'b@example.jp');
UNLOCK TABLES;"""


def test_mysql_dump() -> None:
    assert recs("sql", MYSQL) == [
        (10, "taro@example.jp", "it's"),
        (10, "hanako@example.jp", "O'Brien"),
        (13, "jiro@example.jp", "multi\nline"),  # line 12 is the statement's head
        (15, "saburo@example.jp", "pw5"),
        (15, "a@example.jp", "UNHEX('41')"),
    ]
    assert rejs("sql", MYSQL) == [
        *((n, "sql_other") for n in range(1, 10)),
        (11, "no_login"),  # tuple 3, on the statement's second line: NULL email
        (15, "column_mismatch"),  # tuple 7: two values for three columns
        (16, "sql_other"),
    ]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r"'a\'b'", "a'b"),
        ("'a''b'", "a'b"),
        (r"'a\\b'", "a\\b"),
        (r"'a\nb'", "a\nb"),
        (r"'a\tb'", "a\tb"),
        (r"'a\0b'", "a\x00b"),
        (r"'a\Zb'", "a\x1ab"),
        (r"'100\%'", "100\\%"),
        ("'a\"\"b'", 'a""b'),
        ('"dq\\"x"', 'dq"x'),
        ("'semi;colon),(x'", "semi;colon),(x"),
        ("''", None),
        ("NULL", None),
        ("null", None),
        ("12345", "12345"),
        ("-1.5e3", "-1.5e3"),
        ("_binary 'b'", "b"),
        ("N'日本'", "日本"),
    ],
)
def test_mysql_literals(literal: str, value: str | None) -> None:
    text = f"INSERT INTO t (login, password) VALUES ('ABCD1234',{literal});"  # noqa: S608
    assert recs("sql", text) == [(1, "ABCD1234", value)]


def test_postgres_dump_copy_and_standard_strings() -> None:
    text = "\n".join(
        [
            "--",
            "-- PostgreSQL database dump",
            "--",
            "SET standard_conforming_strings = on;",
            "CREATE TABLE public.accounts (",
            "    id integer NOT NULL,",
            '    "login_id" text,',
            "    password text,",
            "    trading_pin text",
            ");",
            "COPY public.accounts (id, login_id, password, trading_pin) FROM stdin;",
            "1\tABCD1234\tpa\\tss\t1234",
            "2\t\\N\tx\t\\N",
            "3\tEFGH5678\tback\\\\slash\\101\t\\N",
            "4\tshort",
            "\\.",
            r"INSERT INTO public.accounts VALUES (5, 'IJKL9012', 'C:\temp', NULL), "
            r"(6, 'MNOP3456', E'e\'sc', '9999');",
        ]
    )
    out = items("sql", text)
    assert [
        (i.line_no, i.login, i.password, i.has_pin) for i in out if isinstance(i, LeakRecord)
    ] == [
        (12, "ABCD1234", "pa\tss", True),
        (14, "EFGH5678", "back\\slashA", False),
        (17, "IJKL9012", "C:\\temp", False),  # backslash is literal in standard strings
        (17, "MNOP3456", "e'sc", True),
    ]
    assert rejs("sql", text) == [
        *((n, "sql_other") for n in range(1, 11)),
        (13, "no_login"),
        (15, "column_mismatch"),
    ]


def test_sql_statement_level_rejections() -> None:
    text = "\n".join(
        [
            "INSERT INTO orders VALUES (1,2,3);",  # 1: no columns known
            "INSERT INTO orders (id, total) VALUES (1, 2), (3, 4);",  # 2: no identifier
            "INSERT INTO t SELECT * FROM u;",  # 3
            "INSERT INTO users (email, password) VALUES (1, 2) garbage",  # 4
            "more garbage",  # 5: skipped with 4
            "x;",  # 6: end of the bad statement
            "INSERT INTO users (email, password) VALUES ('a@example.jp','x'); "
            "INSERT INTO users (email, password) VALUES ('b@example.jp','y');",  # 7: two on a line
            "",  # 8
            "INSERT INTO users (email, password)",  # 9: head over two lines
            "VALUES ('c@example.jp', 'z');",  # 10
            "INSERT INTO users (email, password) VALUES ('d@example.jp', 'tru",  # 11: truncated
        ]
    )
    assert recs("sql", text) == [
        (4, "1", "2"),  # the tuple before the garbage was complete
        (7, "a@example.jp", "x"),
        (7, "b@example.jp", "y"),
        (10, "c@example.jp", "z"),  # the tuple's line; line 9 is covered by the statement
    ]
    assert rejs("sql", text) == [
        (1, "no_columns"),
        (2, "no_login_column"),
        (3, "sql_unsupported"),
        (4, "bad_sql"),
        (8, "blank"),
        (11, "truncated"),
    ]


def test_sql_reports_a_pg_copy_of_an_unrelated_table_once() -> None:
    text = "COPY public.orders (id, total) FROM stdin;\n1\t2\n3\t4\n\\.\n"
    assert rejs("sql", text) == [(1, "no_login_column"), (5, "blank")]


def test_sql_create_table_without_semicolon_does_not_swallow_inserts() -> None:
    text = (
        "CREATE TABLE users (\n  email text,\n  password text\n)\n"
        "INSERT INTO users (email, password) VALUES ('a@example.jp', 'x');"
    )
    assert recs("sql", text) == [(5, "a@example.jp", "x")]
    assert rejs("sql", text) == [
        (1, "sql_other"),
        (2, "sql_other"),
        (3, "sql_other"),
        (4, "sql_other"),
    ]
