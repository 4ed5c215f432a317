"""Checkpoint counters: what reading counts and what a commit counts are kept apart, so a batch
can commit while the next one is read."""

from __future__ import annotations

from collections import Counter

from exposure.dumps.records import Rejected
from exposure.ingest.stats import RunStats


def test_reading_is_a_snapshot_without_outcome_counters() -> None:
    live = RunStats(lines=10, records=7, matched_records=3, new_exposures=Counter(notify=2))
    live.observe(Rejected(1, "comment"))
    snapshot = live.reading()
    live.observe(Rejected(2, "blank"))  # reading goes on after the snapshot
    live.records += 5
    assert (snapshot.lines, snapshot.records, dict(snapshot.rejected)) == (10, 7, {"comment": 1})
    assert snapshot.matched_records == 0 and not snapshot.new_exposures


def test_with_reading_takes_outcome_from_self_and_reading_from_the_snapshot() -> None:
    outcome = RunStats(lines=999, matched_records=3, events=2, verify_seconds=1.5)
    reading = RunStats(lines=10, records=7, rejected=Counter(blank=1), matched_records=999)
    merged = outcome.with_reading(reading).as_json()
    assert (merged["lines"], merged["records"], merged["rejected"]) == (10, 7, {"blank": 1})
    assert (merged["matched_records"], merged["events"], merged["verify_seconds"]) == (3, 2, 1.5)


def test_add_outcome_sums_only_outcome_counters() -> None:
    total = RunStats(lines=5, matched_records=1, new_exposures=Counter(notify=1), verify_seconds=1)
    batch = RunStats(lines=999, records=999, matched_records=2, verifications=3)
    batch.new_exposures.update(notify=2, force_reset=1)
    batch.verify_seconds = 0.5
    total.add_outcome(batch)
    assert (total.lines, total.records) == (5, 0)  # reading counters are not a batch's to add
    assert (total.matched_records, total.verifications, total.verify_seconds) == (3, 3, 1.5)
    assert total.new_exposures == Counter(notify=3, force_reset=1)
