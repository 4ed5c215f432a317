"""Rendering command output: ingest summaries, exposure listings, the progress bar."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from exposure.ingest.results import IngestResult

from exposure import JsonObject
from exposure.clock import iso_utc

# (field, heading, width): 112 columns of cells and 8 gaps fit a 120-column terminal. The id is
# its first 8 characters (every command that takes an id takes that prefix); the full id, the
# kind, the leak type and the counts are in `exposures show` and the jsonl/csv formats.
TABLE_COLUMNS = (
    ("exposure_id", "exposure", 8),
    ("customer_id", "customer", 12),
    ("identifier_hint", "identifier", 18),
    ("password_status", "password", 8),
    ("action", "action", 11),
    ("severity", "severity", 8),
    ("state", "state", 15),
    ("site_domain", "site", 16),
    ("last_seen", "last seen (UTC)", 16),
)
TABLE_WIDTH = 120
ELLIPSIS = "…"


def summarise_ingest(results: Sequence[IngestResult]) -> JsonObject:
    """One JSON object for the whole command: totals first, then each input."""
    rejected: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    new: Counter[str] = Counter()
    for result in results:
        rejected.update(dict(result.stats.rejected.most_common()))  # ties keep this order
        skipped.update(result.stats.skipped_files)
        new.update(result.stats.new_exposures)
    total = {
        key: sum(getattr(result.stats, key) for result in results)
        for key in (
            "lines",
            "records",
            "without_identifier",
            "matched_records",
            "escalations",
            "sightings",
            "events",
            "verifications",
            "cached_verdicts",
            "tweak_checks",
            "tweaked",
            "problems_total",
        )
    }
    return {
        "files": sum(len(result.stats.files) for result in results),
        **total,
        "rejected": dict(rejected.most_common()),
        "skipped_files": dict(skipped.most_common()),
        "new_exposures": {a: new.get(a, 0) for a in ("force_reset", "notify", "none")},
        "inputs": [result.as_json() for result in results],
    }


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return iso_utc(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def write_exposures(rows: Sequence[Mapping[str, object]], output: str, stream: TextIO) -> None:
    """Exposure records (:class:`~exposure.store.exposures.ExposureRecord`) as a table, JSON
    lines or CSV."""
    if output == "jsonl":
        for row in rows:
            stream.write(
                json.dumps({k: _json(v) for k, v in row.items()}, ensure_ascii=False) + "\n"
            )
    elif output == "csv":
        from exposure.report.render import spreadsheet_safe  # loads the report's templates

        writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else ["exposure_id"])
        writer.writeheader()
        for row in rows:
            # Customer ids and source names come from outside, and this file is opened in a
            # spreadsheet: a cell that would run as a formula is neutralised.
            writer.writerow({k: spreadsheet_safe(_cell(v)) for k, v in row.items()})
    else:
        stream.write(table_line(heading for _, heading, _ in TABLE_COLUMNS) + "\n")
        for row in rows:
            stream.write(table_line(_table_cell(row, name) for name, _, _ in TABLE_COLUMNS) + "\n")
        click.echo(f"{len(rows)} exposure(s)", err=True)


def _table_cell(row: Mapping[str, object], name: str) -> str:
    value = row[name]
    if name == "exposure_id":
        return str(value)[:8]
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return _cell(value)


def fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` columns: padded, or cut with an ellipsis."""
    text = " ".join(text.split())  # no tab or line break can break the grid
    return text.ljust(width) if len(text) <= width else text[: width - 1] + ELLIPSIS


def table_line(cells: Iterable[str]) -> str:
    """One table line: each cell fitted to its column, one space between columns."""
    widths = (width for _, _, width in TABLE_COLUMNS)
    return " ".join(fit(cell, width) for cell, width in zip(cells, widths, strict=True)).rstrip()


def _json(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


class Progress:
    """Bytes read and lines parsed, shown as a bar with throughput and ETA on a terminal."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = max(total_bytes, 1)
        self.done_bytes = 0
        self.lines = 0
        self._started = time.monotonic()
        self._bar: Any = None

    def on_bytes(self, count: int) -> None:
        self.done_bytes += count
        if self._bar is not None:
            self._bar.update(count, self)

    def on_lines(self, count: int) -> None:
        self.lines += count

    def describe(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return f"{self.done_bytes / elapsed / 1e6:.1f} MB/s  {self.lines / elapsed:,.0f} lines/s"


@contextmanager
def progress_bar(total_bytes: int) -> Iterator[Progress]:
    """A :class:`Progress` that draws on stderr when it is a terminal (silent otherwise)."""
    progress = Progress(total_bytes)
    if not sys.stderr.isatty():
        yield progress
        return
    bar: Any
    with click.progressbar(
        length=progress.total_bytes,
        label="ingesting",
        file=sys.stderr,
        show_eta=True,
        show_percent=True,
        item_show_func=lambda item: item.describe() if isinstance(item, Progress) else None,
    ) as bar:
        progress._bar = bar
        yield progress
