"""Line and record formats of leaked dumps: detection and parsing.

Input is already-decoded text: ``(line number, line without terminator)`` pairs from the
reader, which owns encodings and containers. Output is a stream of
:class:`~exposure.dumps.records.LeakRecord`, :class:`~exposure.dumps.records.CookieHit` and
:class:`~exposure.dumps.records.Rejected` items.

**Accounting rule.** Every input line is accounted for: it is a unit of its own, or part of a
multi-line unit, and every unit yields at least one item.

* Line-oriented formats (``combo``, ``ulp``, ``stealer_cookies``, ``jsonl``): each line is a
  unit. ``stealer_cookies`` yields exactly one item per line; ``combo`` and ``ulp`` one item,
  or one record per identifier when a line names several (``email:email:pw``, the e-mail
  after a user name: :mod:`~exposure.dumps.formats.combo`); ``jsonl`` and ``csv`` may yield
  several records for one row (one per identifier column, see
  :mod:`~exposure.dumps.formats.columns`).
* Multi-line units (a stealer block, a CSV row with a quoted newline, an SQL statement, a
  COPY block) yield their items at the line where the unit starts (for SQL: where each VALUES
  tuple starts, and each COPY row at its own line); the unit's other lines are covered by it
  and not rejected separately.
* A line that yields nothing is ``Rejected(line_no, reason)`` with a stable snake_case reason
  and never its content. Reasons shared by every format: ``blank``, ``too_long`` (over 64 KiB
  of UTF-8; 16 MiB for SQL), ``binary`` (NUL or other control characters except TAB),
  ``undecodable`` (lone surrogates from ``surrogateescape``). Per format: see
  :data:`REASONS`.

Passwords are passed on exactly as found (only the terminator was removed); whether a value is
a hash is decided downstream, by the password module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from exposure.dumps.formats.cookies import iter_cookies
from exposure.dumps.formats.detect import detect_format
from exposure.dumps.formats.lists import iter_combo, iter_ulp
from exposure.dumps.formats.sql import iter_sql
from exposure.dumps.formats.stealer import iter_stealer_passwords
from exposure.dumps.formats.tables import iter_csv, iter_jsonl
from exposure.dumps.records import CookieHit, LeakRecord, Rejected

__all__ = ["FORMATS", "REASONS", "CookieHit", "Parsed", "detect_format", "parse_lines"]

Parsed = LeakRecord | Rejected | CookieHit
"""One item of a parsed stream."""

FORMATS: tuple[str, ...] = (
    "combo",
    "ulp",
    "stealer_passwords",
    "stealer_cookies",
    "csv",
    "jsonl",
    "sql",
)

_SCREENING = ("blank", "too_long", "binary", "undecodable")
_LIST_NOISE = ("comment", "html", "separator", "banner")
_LIST = ("no_delimiter", "no_login", "placeholder_login", "bad_login", "bad_url")
REASONS: Mapping[str, tuple[str, ...]] = {
    "combo": (*_SCREENING, *_LIST_NOISE, *_LIST),
    "ulp": (*_SCREENING, *_LIST_NOISE, *_LIST),
    "stealer_passwords": (
        *_SCREENING,
        "comment",
        "html",
        "separator",
        "banner",
        "no_login",
        "placeholder_login",
        "no_credential",
        "unknown_line",
    ),
    "stealer_cookies": (*_SCREENING, "comment", "bad_cookie", "bad_domain"),
    "csv": (
        *_SCREENING,
        "comment",
        "header",
        "preamble",
        "no_header",
        "no_login",
        "placeholder_login",
    ),
    "jsonl": (
        *_SCREENING,
        "bad_json",
        "not_object",
        "json_wrapper",
        "no_login",
        "placeholder_login",
    ),
    "sql": (
        *_SCREENING,
        "sql_other",
        "no_columns",
        "no_login_column",
        "sql_unsupported",
        "empty_insert",
        "empty_copy",
        "truncated",
        "column_mismatch",
        "bad_sql",
        "no_login",
        "placeholder_login",
    ),
}
"""Every reason code each format can give (stable: reports and metrics group by them)."""

_Parser = Callable[[Iterable[tuple[int, str]], str], Iterator[Parsed]]

_PARSERS: dict[str, _Parser] = {
    "combo": lambda lines, _name: iter_combo(lines),
    "ulp": lambda lines, _name: iter_ulp(lines),
    "stealer_passwords": lambda lines, _name: iter_stealer_passwords(lines),
    "stealer_cookies": lambda lines, _name: iter_cookies(lines),
    "csv": lambda lines, name: iter_csv(lines, member_name=name),
    "jsonl": lambda lines, _name: iter_jsonl(lines),
    "sql": lambda lines, _name: iter_sql(lines),
}


def parse_lines(
    fmt: str, lines: Iterable[tuple[int, str]], *, member_name: str = ""
) -> Iterator[Parsed]:
    """Parse decoded ``(line_no, text)`` pairs in format ``fmt`` (one of :data:`FORMATS`).

    Raises :class:`ValueError` at once (not on first iteration) for an unknown format. The
    stream is lazy; see the module docstring for how lines are accounted for.
    """
    try:
        parser = _PARSERS[fmt]
    except KeyError:
        raise ValueError(f"unknown dump format {fmt!r}; expected one of {FORMATS}") from None
    return parser(lines, member_name)
