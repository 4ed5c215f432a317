"""The counters of one ingestion run, committed (as JSON) with every checkpoint so that a
resumed run reports the whole input, not just what happened after the crash."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from exposure import JsonObject
from exposure.dumps.containers import MemberProblem
from exposure.dumps.reader import MemberEnd, MemberSkipped
from exposure.dumps.records import Rejected

MAX_LISTED_PROBLEMS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCounts:
    """One member of the input as read: its format, the decoder used, and its counts."""

    name: str
    format: str
    encoding: str
    lines: int
    records: int
    rejected: Mapping[str, int]
    problem: str | None = None  # e.g. "truncated": read up to a cut

    def as_json(self) -> JsonObject:
        item: JsonObject = {
            "name": self.name,
            "format": self.format,
            "encoding": self.encoding,
            "lines": self.lines,
            "records": self.records,
            "rejected": dict(self.rejected),
        }
        if self.problem:
            item["problem"] = self.problem
        return item

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileCounts:
        return cls(
            name=data["name"],
            format=data["format"],
            encoding=data["encoding"],
            lines=int(data["lines"]),
            records=int(data["records"]),
            rejected=dict(data.get("rejected", {})),
            problem=data.get("problem"),
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """A member that could not be read (encrypted, corrupt, a bomb...): its name and reason."""

    name: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@dataclass(slots=True)
class RunStats:
    """Counters committed with every checkpoint (JSON), so a resumed run reports the whole input."""

    lines: int = 0
    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    skipped_files: Counter[str] = field(default_factory=Counter)  # files not read, by reason
    files: list[FileCounts] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
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
    tweak_checks: int = 0  # stale leaked passwords whose tweaks were verified
    tweaked: int = 0  # ... and of those, how many had a tweak verify

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunStats:
        """The counters a checkpoint stored (:meth:`as_json`)."""
        special = ("rejected", "skipped_files", "new_exposures", "files", "problems")
        stats = cls(**{k: v for k, v in data.items() if k not in special})
        stats.rejected = Counter(data.get("rejected", {}))
        stats.skipped_files = Counter(data.get("skipped_files", {}))
        stats.new_exposures = Counter(data.get("new_exposures", {}))
        stats.files = [FileCounts.from_json(item) for item in data.get("files", [])]
        stats.problems = [
            Problem(item["name"], item["reason"]) for item in data.get("problems", [])
        ]
        return stats

    def as_json(self) -> JsonObject:
        """JSON for the checkpoint and the command's summary (the same keys, in this order)."""
        return {
            "lines": self.lines,
            "records": self.records,
            "rejected": dict(self.rejected.most_common()),
            "skipped_files": dict(self.skipped_files.most_common()),
            "files": [item.as_json() for item in self.files],
            "problems": [item.as_json() for item in self.problems],
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
            "tweak_checks": self.tweak_checks,
            "tweaked": self.tweaked,
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
                FileCounts(
                    name=event.name,
                    format=event.format,
                    encoding=event.encoding,
                    lines=event.lines,
                    records=event.records,
                    rejected=dict(event.rejected),
                    problem=event.problem or None,
                )
            )
        elif isinstance(event, Rejected):
            self.rejected[event.reason] += 1
        elif isinstance(event, MemberSkipped):
            self.skipped_files[event.reason] += 1
        elif isinstance(event, MemberProblem):
            self.problems_total += 1
            if len(self.problems) < MAX_LISTED_PROBLEMS:
                self.problems.append(Problem(event.name, event.reason))


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
    "tweak_checks",
    "tweaked",
)
