"""Loops over line-oriented credential lists: combo files and ULP files.

This is the hot path (tens of millions of lines per dump), so the common line costs the
screening test, one first-character test, one delimiter search and the record itself;
everything else (noise, banners, reversed fields, several identifiers) runs only when that
fast test fails. Every input line yields one item, or several records when it names several
identifiers (see :mod:`~exposure.dumps.formats.combo`).

Real lists are mixed: a combo file may hold ``https://...:login:pw`` lines (parsed as ULP)
and a ULP file may hold plain combo lines (parsed as combo, ``leak_type`` COMBO).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from exposure.dumps.formats.combo import (
    COMBO,
    DELIMITER,
    MAX_LOGIN_CHARS,
    LineItems,
    parse_combo_line,
    parse_split,
)
from exposure.dumps.formats.lines import NOISE_FIRST, noise, screened
from exposure.dumps.formats.ulp import parse_ulp_line, starts_with_browser_url
from exposure.dumps.records import LeakRecord, Rejected


def iter_combo(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """The items of a combo list, in line order."""
    search = DELIMITER.search
    for item in screened(lines):
        if isinstance(item, Rejected):
            yield item
            continue
        line_no, line = item
        if not line or line[0] in NOISE_FIRST:
            reason = noise(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
        # Inlined plain case of parse_combo_line (see there; mirrored by combo_line in
        # _fastscan.c): an e-mail first, no '@' after it, no TAB row; the delimiter's
        # whitespace is dropped.
        m = search(line)
        if m is not None:
            i = m.start()
            login = line[:i].strip()
            rest = line[i + 1 :]
            if "@" in login and len(login) <= MAX_LOGIN_CHARS and "@" not in rest:
                if line[i] != "\t":
                    yield LeakRecord(login, rest.lstrip(" \t") or None, COMBO, line_no)
                    continue
            # A URL line in a combo list (combo_line in _fastscan.c tries ulp_line likewise).
            if rest.startswith("//") and starts_with_browser_url(line):
                record = parse_ulp_line(line_no, line)
                if record is not None:
                    yield record
                    continue
            yield from _items(parse_split(line_no, line, i))
        else:
            yield from _items(parse_combo_line(line_no, line))


def iter_ulp(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """The items of a URL:login:password list, in line order."""
    for item in screened(lines):
        if isinstance(item, Rejected):
            yield item
            continue
        line_no, line = item
        if not line or line[0] in NOISE_FIRST:
            reason = noise(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
            line = line.lstrip()  # indentation before a URL is not part of anything
        record = parse_ulp_line(line_no, line)
        yield from _items(parse_combo_line(line_no, line) if record is None else record)


def _items(parsed: LineItems) -> tuple[LeakRecord | Rejected, ...]:
    return parsed if isinstance(parsed, tuple) else (parsed,)
