"""Rendering command output: ingest summaries, exposure listings, the progress bar."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import click

if TYPE_CHECKING:
    from exposure.ingest.results import IngestResult

from exposure import JsonObject
from exposure.clock import iso_utc

# (field, heading, width)
TABLE_COLUMNS = (
    ("exposure_id", "exposure", 36),
    ("customer_id", "customer", 12),
    ("identifier_kind", "kind", 8),
    ("identifier_hint", "identifier", 22),
    ("password_status", "password", 8),
    ("action", "action", 11),
    ("severity", "severity", 8),
    ("leak_type", "leak", 14),
    ("site_domain", "site", 24),
    ("occurrences", "seen", 5),
    ("last_seen", "last seen", 20),
)


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


def write_exposures(rows: Sequence[dict[str, Any]], output: str, stream: TextIO) -> None:
    if output == "jsonl":
        for row in rows:
            stream.write(
                json.dumps({k: _json(v) for k, v in row.items()}, ensure_ascii=False) + "\n"
            )
    elif output == "csv":
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else ["exposure_id"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
    else:
        headings = (heading.ljust(width) for _, heading, width in TABLE_COLUMNS)
        stream.write("  ".join(headings).rstrip() + "\n")
        for row in rows:
            cells = (_cell(row[name])[:width].ljust(width) for name, _, width in TABLE_COLUMNS)
            stream.write("  ".join(cells).rstrip() + "\n")
        click.echo(f"{len(rows)} exposure(s)", err=True)


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
