"""Loops over line-oriented credential lists: combo files and ULP files.

This is the hot path (tens of millions of lines per dump), so the common line costs one
``isprintable`` call, one first-character test, one delimiter search and the record itself;
everything else (screening, noise, banners, reversed fields) runs only when that fast test
fails. Every input line yields exactly one item.

Real lists are mixed: a combo file may hold ``https://...:login:pw`` lines (parsed as ULP)
and a ULP file may hold plain combo lines (parsed as combo, ``leak_type`` COMBO).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from exposure.dumps.formats.combo import (
    COMBO,
    DELIMITER,
    MAX_LOGIN_CHARS,
    parse_combo_line,
    parse_split,
)
from exposure.dumps.formats.lines import NOISE_FIRST, SHORT_LINE, needs_screening, noise, screen
from exposure.dumps.formats.ulp import parse_ulp_line, starts_with_browser_url
from exposure.dumps.records import LeakRecord, Rejected


def iter_combo(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """One item per line of a combo list."""
    search = DELIMITER.search
    for line_no, line in lines:
        if len(line) > SHORT_LINE or not line.isprintable():
            line, reason = screen(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
        if not line or line[0] in NOISE_FIRST:
            reason = noise(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
        # Inlined fast path of parse_combo_line (e-mail first): most lines of most lists.
        m = search(line)
        if m is not None:
            i = m.start()
            login = line[:i].strip()
            if "@" in login and len(login) <= MAX_LOGIN_CHARS:
                yield LeakRecord(login, line[i + 1 :] or None, COMBO, line_no)
                continue
            if line.startswith("//", i + 1) and starts_with_browser_url(line):
                record = parse_ulp_line(line_no, line)
                if record is not None:
                    yield record
                    continue
            yield parse_split(line_no, line, i)
        else:
            yield parse_combo_line(line_no, line)


def iter_ulp(lines: Iterable[tuple[int, str]]) -> Iterator[LeakRecord | Rejected]:
    """One item per line of a URL:login:password list."""
    for line_no, line in lines:
        if needs_screening(line):
            line, reason = screen(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
        if not line or line[0] in NOISE_FIRST:
            reason = noise(line)
            if reason is not None:
                yield Rejected(line_no, reason)
                continue
            line = line.lstrip()  # indentation before a URL is not part of anything
        record = parse_ulp_line(line_no, line)
        yield parse_combo_line(line_no, line) if record is None else record
