"""What ingesting came to, as typed values between modules (JSON only at the CLI's edge).

* :class:`IngestResult`: one input ingested by the pipeline (a file, a folder, an archive, a
  connector's page of records, one byte range of a large file, an HIBP range answer).
* :class:`LargeFileResult`: a large file handed to the byte-range queue, and what of it was
  ingested before the call returned.
* :class:`ChunkResult`: one byte range ingested by a chunk worker.
* :class:`ConnectorRunResult` / :class:`RunSkipped`: one connector run, or why it did not run.

The first two satisfy :class:`connectors.base.InputOutcome`, the view of a stored input that
a connector gets back from the ``yield`` of its page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from exposure import JsonObject
from exposure.clock import iso_utc
from exposure.ingest.stats import RunStats

ACTIONS = ("force_reset", "notify", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """One input's ingest run. ``stats`` covers the whole input, also when the run
    ``resumed`` an interrupted one; it is this result's own copy."""

    input: str
    source: str
    resumed: bool
    stats: RunStats

    @property
    def records(self) -> int:
        return self.stats.records

    @property
    def matched_records(self) -> int:
        return self.stats.matched_records

    @property
    def new_exposures(self) -> Mapping[str, int]:
        return self.stats.new_exposures

    @property
    def events(self) -> int:
        return self.stats.events

    @property
    def sightings(self) -> int:
        return self.stats.sightings

    @property
    def problems_total(self) -> int:
        return self.stats.problems_total

    @property
    def problem_reasons(self) -> Mapping[str, int]:
        """The listed problems (the first 200) counted by reason."""
        return Counter(problem.reason for problem in self.stats.problems)

    @property
    def complete(self) -> bool:
        return True

    def as_json(self) -> JsonObject:
        """The command's per-input summary."""
        return {
            "input": self.input,
            "source": self.source,
            "resumed": self.resumed,
            **self.stats.as_json(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkResult:
    """One byte range of a large file, ingested by a chunk worker."""

    file_key: str
    chunk_no: int
    result: IngestResult


@dataclass(frozen=True, slots=True, kw_only=True)
class LargeFileResult:
    """A large file registered as byte ranges (``chunks``, of which ``chunks_done`` are
    ingested), and the sum of the ranges this call ingested itself."""

    input: str
    source: str
    chunks: int
    chunks_done: int
    ingested: tuple[ChunkResult, ...] = ()

    @property
    def records(self) -> int:
        return sum(chunk.result.records for chunk in self.ingested)

    @property
    def matched_records(self) -> int:
        return sum(chunk.result.matched_records for chunk in self.ingested)

    @property
    def new_exposures(self) -> Mapping[str, int]:
        total: Counter[str] = Counter()
        for chunk in self.ingested:
            total.update(chunk.result.new_exposures)
        return total

    @property
    def events(self) -> int:
        return sum(chunk.result.events for chunk in self.ingested)

    @property
    def sightings(self) -> int:
        return sum(chunk.result.sightings for chunk in self.ingested)

    @property
    def problems_total(self) -> int:
        return 0  # a file is only split once its format is known to read line by line

    @property
    def problem_reasons(self) -> Mapping[str, int]:
        return {}

    @property
    def complete(self) -> bool:
        """Every range is ingested (by this call or by the replicas' chunk workers)."""
        return self.chunks_done >= self.chunks


Ingested = IngestResult | LargeFileResult


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSkipped:
    """A connector run that did not happen: another run holds the connector's lock.
    ``run_id`` names the ``skipped`` row a manual run records (``None`` for a scheduled one)."""

    connector: str
    run_id: int | None
    reason: str

    @property
    def outcome(self) -> str:
        return "skipped"

    def as_json(self) -> JsonObject:
        return {
            "connector": self.connector,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorRunResult:
    """One connector run: ``outcome`` ``success`` or ``failed`` (with ``error_class`` fatal,
    retriable or skippable, and an ``error`` that holds no secret, identifier or URL query)."""

    connector: str
    run_id: int
    outcome: str
    started_at: datetime
    finished_at: datetime
    pages: int
    records: int
    matched: int
    new_exposures: Mapping[str, int] = field(default_factory=dict)
    events: int = 0
    sightings: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    stopped: bool = False
    error_class: str | None = None
    error: str | None = None

    def as_json(self) -> JsonObject:
        """``exposure connectors run``'s summary."""
        return {
            "connector": self.connector,
            "run_id": self.run_id,
            "outcome": self.outcome,
            "started_at": iso_utc(self.started_at, timespec="auto"),
            "finished_at": iso_utc(self.finished_at, timespec="auto"),
            "pages": self.pages,
            "records": self.records,
            "matched": self.matched,
            "new_exposures": {a: self.new_exposures.get(a, 0) for a in ACTIONS},
            "events": self.events,
            "sightings": self.sightings,
            "skipped": dict(sorted(self.skipped.items())),
            "retries": self.retries,
            "stopped": self.stopped,
            "error_class": self.error_class,
            "error": self.error,
        }


ConnectorOutcome = ConnectorRunResult | RunSkipped
