"""The counters of one ingestion run, committed (as JSON) with every checkpoint so that a
resumed run reports the whole input, not just what happened after the crash."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

from exposure.dumps.containers import MemberProblem
from exposure.dumps.reader import MemberEnd, MemberSkipped
from exposure.dumps.records import Rejected

MAX_LISTED_PROBLEMS = 200


@dataclass(slots=True)
class RunStats:
    """Counters committed with every checkpoint (JSON), so a resumed run reports the whole input."""

    lines: int = 0
    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped_files: Counter[str] = field(default_factory=Counter)  # files not read, by reason
    files: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)
    problems_total: int = 0
    without_identifier: int = 0
    matched_records: int = 0
    new_exposures: Counter[str] = field(default_factory=Counter)
    escalations: int = 0
    sightings: int = 0
    events: int = 0
    verifications: int = 0
    cached_verdicts: int = 0
    verify_seconds: float = 0.0  # wall time spent in argon2 verification

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStats:
        counters = ("rejected", "skipped_files", "new_exposures")
        stats = cls(**{k: v for k, v in data.items() if k not in counters})
        stats.rejected = Counter(data.get("rejected", {}))
        stats.skipped_files = Counter(data.get("skipped_files", {}))
        stats.new_exposures = Counter(data.get("new_exposures", {}))
        return stats

    def as_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "records": self.records,
            "rejected": dict(self.rejected.most_common()),
            "skipped_files": dict(self.skipped_files.most_common()),
            "files": self.files,
            "problems": self.problems,
            "problems_total": self.problems_total,
            "without_identifier": self.without_identifier,
            "matched_records": self.matched_records,
            "new_exposures": dict(self.new_exposures),
            "escalations": self.escalations,
            "sightings": self.sightings,
            "events": self.events,
            "verifications": self.verifications,
            "cached_verdicts": self.cached_verdicts,
            "verify_seconds": round(self.verify_seconds, 3),
        }

    def reading(self) -> RunStats:
        """A copy of the counters that reading the input updates (every counter but the
        outcome ones: lines, records, rejections, files, problems), as they stand now: what a
        checkpoint taken here covers."""
        return RunStats(
            **{
                f.name: copy.copy(getattr(self, f.name))
                for f in fields(self)
                if f.name not in _OUTCOME_FIELDS
            }
        )

    def with_reading(self, reading: RunStats) -> RunStats:
        """These outcome counters (matches, exposures, verifications, ...) with the reading
        counters of ``reading``."""
        merged = reading.reading()
        for name in _OUTCOME_FIELDS:
            setattr(merged, name, getattr(self, name))
        return merged

    def add_outcome(self, other: RunStats) -> None:
        """Add ``other``'s outcome counters (one batch's) to these."""
        for name in _OUTCOME_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            else:
                setattr(self, name, mine + theirs)

    def observe(self, event: object) -> None:
        if isinstance(event, MemberEnd):
            self.lines += event.lines
            self.files.append(
                {
                    "name": event.name,
                    "format": event.format,
                    "encoding": event.encoding,
                    "lines": event.lines,
                    "records": event.records,
                    "rejected": dict(event.rejected),
                    **({"problem": event.problem} if event.problem else {}),
                }
            )
        elif isinstance(event, Rejected):
            self.rejected[event.reason] += 1
        elif isinstance(event, MemberSkipped):
            self.skipped_files[event.reason] += 1
        elif isinstance(event, MemberProblem):
            self.problems_total += 1
            if len(self.problems) < MAX_LISTED_PROBLEMS:
                self.problems.append({"name": event.name, "reason": event.reason})


_OUTCOME_FIELDS = (
    "without_identifier",
    "matched_records",
    "new_exposures",
    "escalations",
    "sightings",
    "events",
    "verifications",
    "cached_verdicts",
    "verify_seconds",
)
