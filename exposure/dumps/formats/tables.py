"""Tabular leaks: CSV (with a header row) and JSON lines.

CSV
    The header is the first row that names an identifier column; up to ``MAX_PREAMBLE_ROWS``
    rows before it (an Excel title row, notes) are ``preamble``. Its delimiter (``,`` ``;``
    TAB) is sniffed by :class:`csv.Sniffer` (``.tsv`` members are TAB). Columns are mapped by
    :mod:`~exposure.dumps.formats.columns`. Rows are split by the :mod:`csv` module, so quoted
    fields may hold delimiters, doubled quotes and newlines. A row whose quote is still open at
    the end of a line continues on the next lines (at most ``MAX_ROW_LINES``) *only if* the
    joined row has exactly the header's width; otherwise the line is read on its own with
    quotes taken literally (a naive export of a password such as ``"Sakura``) and the records
    are ``ambiguous``. Likewise a row that is not valid CSV (``"ab"c``). A row wider than the
    header whose last column is the password gets the extra cells joined back into the password
    (an unquoted delimiter inside it), ``ambiguous``.

    Accounting: a multi-line row yields its items at its first line; its other lines are
    covered. Reasons: ``header`` (the header, and any repeat of it), ``preamble``,
    ``no_header`` (no header found: every row of the file), ``comment``, ``blank``,
    ``no_login``, plus the screening reasons.

JSON lines
    One object per line; keys are mapped like CSV columns, case-insensitively, and the keys of
    a nested object are read too (one level). Strings are taken as they are, integers as
    their decimal text; other values are ignored. A pretty-printed array (``[`` / ``{...},`` /
    ``]``) is accepted. Reasons: ``bad_json``, ``not_object``, ``json_wrapper``, ``no_login``,
    ``blank``, plus the screening reasons. One bad line never stops the file.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any

from exposure.dumps.formats.columns import ColumnMap
from exposure.dumps.formats.lines import needs_screening, screen, screened
from exposure.dumps.records import LeakRecord, Rejected

MAX_ROW_LINES = 32
"""Most physical lines one quoted CSV row may span before it is read line by line."""

MAX_PREAMBLE_ROWS = 5
"""Rows (title lines, notes) that may precede the header before the file is ``no_header``."""

_DELIMITERS = ",;\t"


def sniff_delimiter(header: str) -> str:
    """Delimiter of a header line: ``,`` ``;`` or TAB (``,`` when it cannot tell)."""
    try:
        return csv.Sniffer().sniff(header, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        counts = {d: header.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _strict_cells(text: str, delimiter: str) -> list[str] | str:
    """Cells of ``text``, or ``"open"`` (a quoted field runs past the end) / ``"malformed"``."""
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True), [])
    except csv.Error as exc:
        # The csv module's only signal for "quoted field still open" is this message.
        return "open" if "unexpected end of data" in str(exc) else "malformed"


def _literal_cells(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])


class _Rows:
    """Logical CSV rows from physical lines: ``(start line, cells, ambiguous)`` or rejections."""

    def __init__(self, lines: Iterable[tuple[int, str]], delimiter: str | None) -> None:
        self._source = iter(lines)
        self._pending: deque[tuple[int, str]] = deque()
        self.delimiter = delimiter
        self.width = 0  # header width once known

    def _next(self) -> tuple[int, str] | None:
        if self._pending:
            return self._pending.popleft()
        return next(self._source, None)

    def __iter__(self) -> Iterator[tuple[int, list[str], bool] | Rejected]:
        # Pulled one at a time: _continue takes the lines after an open quote from _next too.
        for item in screened(iter(self._next, None)):
            if isinstance(item, Rejected):
                yield item
                continue
            line_no, line = item
            stripped = line.strip()
            if not stripped:
                yield Rejected(line_no, "blank")
                continue
            if stripped.startswith("#"):
                yield Rejected(line_no, "comment")
                continue
            if self.delimiter is None:
                self.delimiter = sniff_delimiter(line)
            cells = _strict_cells(line, self.delimiter)
            if cells == "open":
                cells = self._continue(line)
            if isinstance(cells, str):
                yield line_no, _literal_cells(line, self.delimiter), True
            else:
                yield line_no, cells, False

    def _continue(self, first: str) -> list[str] | str:
        """Join following lines to a row whose quoted field is open; give them back if the
        result is not a plausible row."""
        delimiter = self.delimiter or ","
        taken: list[tuple[int, str]] = []
        parts = [first]
        size = len(first)
        cells: list[str] | str = "open"
        while cells == "open" and len(parts) < MAX_ROW_LINES:
            item = self._next()
            if item is None:
                break
            taken.append(item)
            if needs_screening(item[1]) and screen(item[1])[1] is not None:
                break
            parts.append(item[1])
            size += len(item[1]) + 1
            if size > 1024 * 1024:
                break
            cells = _strict_cells("\n".join(parts), delimiter)
        if isinstance(cells, list) and (not self.width or len(cells) == self.width):
            return cells
        self._pending.extendleft(reversed(taken))
        return "malformed"


def iter_csv(
    lines: Iterable[tuple[int, str]], *, member_name: str = ""
) -> Iterator[LeakRecord | Rejected]:
    """Items of a CSV file (see the module docstring)."""
    fixed = "\t" if member_name.lower().endswith(".tsv") else None
    rows = _Rows(lines, fixed)
    header: list[str] | None = None
    columns: ColumnMap | None = None
    # Until the header is found, items are held back (in line order): a row before the header
    # is ``preamble`` if a header follows, ``no_header`` if none does.
    held: list[tuple[int, str | None]] = []
    preamble_rows = 0
    for row in rows:
        if isinstance(row, Rejected):
            if columns is None:
                held.append((row.line_no, row.reason))
            else:
                yield row
            continue
        line_no, cells, ambiguous = row
        if columns is None:
            candidate = ColumnMap.from_names(cells)
            if candidate.usable or preamble_rows == MAX_PREAMBLE_ROWS:
                header, columns = cells, candidate
                rows.width = len(cells)
                before = "preamble" if candidate.usable else "no_header"
                yield from (Rejected(n, reason or before) for n, reason in held)
                yield Rejected(line_no, "header" if candidate.usable else "no_header")
            else:
                held.append((line_no, None))
                preamble_rows += 1
                rows.delimiter = fixed  # sniff the next row afresh
            continue
        if not columns.usable:
            yield Rejected(line_no, "no_header")
            continue
        if cells == header:
            yield Rejected(line_no, "header")
            continue
        if len(cells) > columns.width:
            ambiguous = True
            last = columns.width - 1
            if columns.passwords and columns.passwords[0] == last:
                cells = [*cells[:last], (rows.delimiter or ",").join(cells[last:])]
        result = columns.records(cells, line_no, ambiguous=ambiguous)
        if isinstance(result, Rejected):
            yield result
        else:
            yield from result
    if columns is None:
        yield from (Rejected(n, reason or "no_header") for n, reason in held)


@lru_cache(maxsize=1024)
def _json_columns(keys: tuple[str, ...]) -> ColumnMap:
    return ColumnMap.from_names(keys)


def _json_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_json_line(line_no: int, line: str) -> list[LeakRecord] | Rejected:
    """Records of one JSON-lines line (already screened)."""
    text = line.strip()
    if not text:
        return Rejected(line_no, "blank")
    if text in ("[", "]", "],", "[]"):
        return Rejected(line_no, "json_wrapper")
    if text.startswith("{") and text.endswith(","):
        text = text[:-1]
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Rejected(line_no, "bad_json")
    if not isinstance(obj, dict):
        return Rejected(line_no, "not_object")
    keys: list[str] = []
    values: list[str | None] = []
    for key, value in obj.items():
        if isinstance(value, dict):
            for inner_key, inner_value in value.items():
                keys.append(inner_key)
                values.append(_json_text(inner_value))
        else:
            keys.append(key)
            values.append(_json_text(value))
    columns = _json_columns(tuple(keys))
    if not columns.usable:
        return Rejected(line_no, "no_login")
    return columns.records(values, line_no)


def iter_jsonl(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """Items of a JSON-lines file: every line yields at least one item."""
    for item in screened(lines):
        if isinstance(item, Rejected):
            yield item
            continue
        result = parse_json_line(*item)
        if isinstance(result, Rejected):
            yield result
        else:
            yield from result
