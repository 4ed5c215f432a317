"""SQL dumps: ``INSERT``/``REPLACE ... VALUES`` statements and PostgreSQL ``COPY ... FROM stdin``.

Columns come from the statement's column list, else from an earlier ``CREATE TABLE`` for the
same table (schema prefix and quoting ignored), and are mapped to login/password/PIN/site like
CSV headers (:mod:`~exposure.dumps.formats.columns`: one record per identifier column).

Accounting: the unit is a statement (or a COPY block). Each VALUES tuple yields its items at
the line where the tuple starts; each COPY row at its own line. The statement's other lines
(``INSERT INTO t (...) VALUES`` alone, ``\\.``) are covered by its rows. A statement that
yields nothing else yields one rejection at its first line: ``no_columns`` (no column list and
no ``CREATE TABLE`` seen), ``no_login_column`` (a table without identifier columns, e.g.
``orders``), ``sql_unsupported`` (``INSERT ... SELECT``/``SET``), ``empty_insert`` or
``truncated`` (the dump ends inside it). Tuples or rows whose width differs from the columns
give ``column_mismatch``; text that is not a VALUES list ``bad_sql`` (the rest of the statement,
up to a line ending in ``;``, is skipped). Every other line (``CREATE``, ``SET``, ``LOCK``,
comments) is ``sql_other``; blank lines ``blank``.

SQL lines may be far longer than credential lines (mysqldump writes a whole extended INSERT
on one line), so the limit here is :data:`MAX_SQL_LINE_BYTES`, not 64 KiB.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence

from exposure.dumps.formats.columns import ColumnMap
from exposure.dumps.formats.lines import screened
from exposure.dumps.formats.sqlvalues import ValuesLexer, copy_field
from exposure.dumps.records import LeakRecord, Rejected

MAX_SQL_LINE_BYTES = 16 * 1024 * 1024
MAX_CREATE_LINES = 2000

_PART = r"(?:`[^`]+`|\"[^\"]+\"|\[[^\]]+\]|[^\s(`\"\[.;]+)"
_NAME = rf"(?P<table>{_PART}(?:\.{_PART})*)"
_INSERT = re.compile(r"\s*(?:INSERT|REPLACE)(?:\s|$)", re.IGNORECASE)
_INSERT_HEAD = re.compile(
    r"\s*(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?"
    + _NAME
    + r"\s*(?:\((?P<columns>[^)]*)\)\s*)?VALUES?\b\s*",
    re.IGNORECASE,
)
_COPY_HEAD = re.compile(
    r"\s*COPY\s+" + _NAME + r"\s*(?:\((?P<columns>[^)]*)\)\s*)?FROM\s+stdin\b(?P<options>.*)",
    re.IGNORECASE,
)
_CREATE = re.compile(
    r"\s*CREATE\s+(?:(?:GLOBAL\s+|LOCAL\s+)?(?:TEMPORARY|TEMP|UNLOGGED)\s+)?TABLE\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?" + _NAME,
    re.IGNORECASE,
)
_CONFORMING = re.compile(r"\s*SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)", re.I)
_CSV_OPTION = re.compile(r"\bCSV\b", re.IGNORECASE)
_COLUMN_DEF = re.compile(r"\s*(`[^`]+`|\"[^\"]+\"|\[[^\]]+\]|\w+)")
_NOT_COLUMNS = frozenset(
    (
        "PRIMARY",
        "KEY",
        "UNIQUE",
        "CONSTRAINT",
        "INDEX",
        "FOREIGN",
        "FULLTEXT",
        "SPATIAL",
        "CHECK",
        "EXCLUDE",
        "PERIOD",
        "LIKE",
    )
)
_SQL_START = re.compile(
    r"\s*(?:(?:INSERT|REPLACE)\s+(?:IGNORE\s+)?INTO\s|COPY\s+\S+.*\bFROM\s+stdin\b|"
    r"CREATE\s+TABLE\s|DROP\s+TABLE\s|LOCK\s+TABLES\s|/\*!\d{5}|"
    r"--\s+(?:MySQL|MariaDB|PostgreSQL)\b.*dump|"
    r"SET\s+(?:NAMES|SQL_MODE|FOREIGN_KEY_CHECKS|UNIQUE_CHECKS|TIME_ZONE|CHARACTER_SET_CLIENT|"
    r"statement_timeout|client_encoding|standard_conforming_strings|search_path)\b)",
    re.IGNORECASE,
)


def is_sql_line(line: str) -> bool:
    """True for a line only an SQL dump would hold (used by format detection)."""
    return _SQL_START.match(line) is not None


def _unquote(name: str) -> str:
    return name.strip().strip('`"[]')


def _table_key(name: str) -> str:
    return _unquote(name.split(".")[-1]).lower()


def _column_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(_unquote(c) for c in text.split(","))


def create_table_columns(statement: str, start: int) -> tuple[str, ...]:
    """Column names of a ``CREATE TABLE`` statement whose name ends at ``start``."""
    open_paren = statement.find("(", start)
    if open_paren == -1:
        return ()
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, ""
    for c in statement[open_paren + 1 :]:
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(c)
    parts.append("".join(buf))
    names = []
    for part in parts:
        m = _COLUMN_DEF.match(part)
        if m is not None and m.group(1).upper() not in _NOT_COLUMNS:
            names.append(_unquote(m.group(1)))
    return tuple(names)


class _SqlReader:
    """State machine over the lines of one dump."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[str, ...]] = {}
        self.backslash_escapes = True
        self.state = "idle"  # idle, comment, create, head, values, copy, skip
        self.start = 0  # first line of the current statement
        self.items = 0  # items the current statement has yielded
        self.text: list[str] = []  # CREATE TABLE / INSERT head being accumulated
        self.columns: ColumnMap | None = None
        self.copy_csv = False
        self.lexer = ValuesLexer(True)

    def feed(self, line_no: int, line: str) -> Iterator[LeakRecord | Rejected]:
        state = self.state
        if state == "values":
            yield from self._values(line_no, line, 0)
        elif state == "copy":
            yield from self._copy_row(line_no, line)
        elif state == "head":
            yield from self._head(line_no, line)
        elif state == "skip":
            if line.rstrip().endswith(";"):
                self.state = "idle"
        elif not line.strip():
            yield Rejected(line_no, "blank")
        elif state == "create" and not (_INSERT.match(line) or _COPY_HEAD.match(line)):
            yield Rejected(line_no, "sql_other")
            self._create(line)
        elif state == "comment":
            yield Rejected(line_no, "sql_other")
            if "*/" in line:
                self.state = "idle"
        else:
            yield from self._idle(line_no, line)

    def finish(self) -> Iterator[Rejected]:
        if self.state == "values" and self.lexer.in_tuple:
            self.items += 1
            yield Rejected(self.lexer.tuple_line, "truncated")
        if self.state in ("head", "values", "copy") and not self.items:
            yield Rejected(self.start, "truncated")

    def _begin(self, line_no: int, state: str) -> None:
        self.state, self.start, self.items = state, line_no, 0

    def _idle(self, line_no: int, line: str) -> Iterator[LeakRecord | Rejected]:
        if _INSERT.match(line):
            self._begin(line_no, "head")
            self.text = []
            yield from self._head(line_no, line)
            return
        copy = _COPY_HEAD.match(line)
        if copy is not None:
            self._begin(line_no, "copy")
            self.copy_csv = _CSV_OPTION.search(copy.group("options")) is not None
            yield from self._use_columns(copy.group("table"), copy.group("columns"))
            return
        yield Rejected(line_no, "sql_other")
        create = _CREATE.match(line)
        if create is not None:
            self.state, self.text = "create", []
            self._create(line)
            return
        conforming = _CONFORMING.match(line)
        if conforming is not None:
            self.backslash_escapes = conforming.group(1).lower() == "off"
        stripped = line.strip()
        if stripped.startswith("/*") and "*/" not in stripped:
            self.state = "comment"

    def _create(self, line: str) -> None:
        self.text.append(line)
        if not line.rstrip().endswith(";"):
            if len(self.text) > MAX_CREATE_LINES:  # no end in sight: forget this table
                self.state, self.text = "idle", []
            return
        statement = "\n".join(self.text)
        m = _CREATE.match(statement)
        if m is not None:
            self.tables[_table_key(m.group("table"))] = create_table_columns(statement, m.end())
        self.state, self.text = "idle", []

    def _use_columns(self, table: str, column_list: str | None) -> Iterator[Rejected]:
        names = _column_list(column_list) or self.tables.get(_table_key(table))
        self.columns = None
        if names is None:
            reason = "no_columns"
        else:
            columns = ColumnMap.from_names(names)
            if columns.usable:
                self.columns = columns
                return
            reason = "no_login_column"
        self.items += 1
        yield Rejected(self.start, reason)

    def _head(self, line_no: int, line: str) -> Iterator[LeakRecord | Rejected]:
        self.text.append(line)
        text = "\n".join(self.text)
        m = _INSERT_HEAD.match(text)
        if m is None:
            if ";" in line or len(self.text) > 32:
                self.items += 1
                yield Rejected(self.start, "sql_unsupported")
                self.state = "idle" if line.rstrip().endswith(";") else "skip"
            return
        self.text = []
        self.state = "values"
        self.lexer = ValuesLexer(self.backslash_escapes)
        yield from self._use_columns(m.group("table"), m.group("columns"))
        yield from self._values(line_no, line, len(line) - (len(text) - m.end()))

    def _values(self, line_no: int, line: str, pos: int) -> Iterator[LeakRecord | Rejected]:
        lexer = self.lexer
        for tuple_line, values in lexer.feed(line_no, line, pos):
            if self.columns is not None:
                yield from self._row(tuple_line, values)
        if lexer.error:
            self.items += 1
            yield Rejected(line_no, "bad_sql")
            self.state = "idle" if line.rstrip().endswith(";") else "skip"
        elif lexer.ended:
            if not self.items:
                yield Rejected(self.start, "empty_insert")
            self.state = "idle"
            rest = lexer.rest
            if _INSERT.match(rest) or _COPY_HEAD.match(rest):  # two statements on one line
                yield from self._idle(line_no, rest)

    def _copy_row(self, line_no: int, line: str) -> Iterator[LeakRecord | Rejected]:
        if line.rstrip("\r") == "\\.":
            if not self.items:
                yield Rejected(self.start, "empty_copy")
            self.state = "idle"
            return
        if self.columns is None:
            return
        values: Sequence[str | None]
        if self.copy_csv:
            values = [v or None for v in next(csv.reader([line]), [])]
        else:
            values = [copy_field(f) for f in line.split("\t")]
        yield from self._row(line_no, values)

    def _row(self, line_no: int, values: Sequence[str | None]) -> Iterator[LeakRecord | Rejected]:
        columns = self.columns
        if columns is None:
            return
        self.items += 1
        if len(values) != columns.width:
            yield Rejected(line_no, "column_mismatch")
            return
        result = columns.records(values, line_no)
        if isinstance(result, Rejected):
            yield result
        else:
            yield from result


def iter_sql(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """Items of an SQL dump (see the module docstring for the accounting)."""
    reader = _SqlReader()
    for item in screened(lines, MAX_SQL_LINE_BYTES):
        if isinstance(item, Rejected):
            yield item
        else:
            yield from reader.feed(*item)
    yield from reader.finish()
