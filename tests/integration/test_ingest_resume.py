"""Crash safety: an ingest killed with SIGKILL at any moment, then run again, ends with exactly
the exposures (live, tweaked, stale and unknown ones), sightings, cases, case events (the actions
each case announced, in order) and corpus counts of an uninterrupted run, although observations
are committed as their verifications complete. And the native fast path writes exactly what the
pure-Python path writes."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.dumps import fastpath
from exposure.dumps.fastpath import RecordBlock
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import load_settings
from exposure.store import corpus as corpus_store
from exposure.store import db
from exposure.store.models import Case, Exposure, IngestRun, LeakedPassword, OutboxEvent, Sighting
from tests.cli import EXPOSURE_SCRIPT, run_cli, run_script
from tests.conftest import environment, only_sqlite
from tests.leakgen import HASHER, HEADER
from tests.waiting import eventually

CUSTOMERS = 1_500
LINES = 60_000
BATCH = "200"  # events per transaction: many commits to be killed between and during


def _write_inputs(tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(42)
    phc = HASHER.hash("Sakura#2025")
    rows = [
        f"R{n:05d},resume.user{n}@example.jp,RSM{n:05d},,{phc if n % 10 == 0 else ''}"
        for n in range(CUSTOMERS)
    ]
    customers = tmp_path / "customers.csv"
    customers.write_text(HEADER + "\n".join(rows) + "\n")
    lines = []
    for i in range(LINES):
        if i % 15 == 0:  # hits, with repeats of the same exposure across the file
            n = rng.randrange(CUSTOMERS)
            draw = rng.random()
            # Live, tweaked (the current password is the leaked one counted up) or stale.
            password = (
                "Sakura#2025"
                if draw < 0.4
                else "Sakura#2024"
                if draw < 0.55
                else f"guess{rng.randrange(5)}"
            )
            lines.append(f"resume.user{n}@example.jp:{password}")
        else:
            lines.append(f"stranger{i}@example.org:pw{rng.randrange(10**6)}")
    dump = tmp_path / "dump.txt"
    dump.write_text("\n".join(lines) + "\n")
    return customers, dump


async def _state(engine: AsyncEngine) -> dict[str, Any]:
    """Everything an ingest writes, keyed by natural keys (ids differ between databases)."""
    await corpus_store.compact(engine)  # staged digests count once folded, as /range sees them
    async with engine.connect() as conn:
        exposures = (await conn.execute(select(Exposure))).all()
        natural = {
            e.exposure_id: (e.customer_id, e.identifier_kind, bytes(e.password_fp), e.site_domain)
            for e in exposures
        }
        sightings = (await conn.execute(select(Sighting))).all()
        outbox = (await conn.execute(select(OutboxEvent))).all()
        cases = (await conn.execute(select(Case))).all()
        corpus = (await conn.execute(select(LeakedPassword.sha1, LeakedPassword.count))).all()
        runs = (await conn.execute(select(IngestRun.state))).scalars().all()
    members: dict[str, tuple[Any, ...]] = {}
    for e in exposures:
        members[e.case_id] = (*members.get(e.case_id, ()), natural[e.exposure_id])
    members = {case_id: tuple(sorted(keys)) for case_id, keys in members.items()}
    return {
        "exposures": sorted(
            (natural[e.exposure_id], e.action, e.password_status, e.occurrences, e.match_strength)
            for e in exposures
        ),
        "sightings": sorted(
            (natural[s.exposure_id], s.ordinal, s.file, s.line_no) for s in sightings
        ),
        # Events are per case: the actions each case announced, in order. (Which exposure
        # triggered a rise, and which others its event lists, can depend on timing: a tweak
        # escalation may commit before or after a later batch's live password of the same
        # customer; either way the case announces force_reset once. See _events_hold.)
        "outbox": sorted(
            (members[case_id], tuple(actions)) for case_id, actions in _announced(outbox).items()
        ),
        "cases": sorted(
            (c.customer_id, c.state, c.action, c.severity, c.announced_action, members[c.case_id])
            for c in cases
        ),
        "corpus": sorted((bytes(h), c) for h, c in corpus),
        "runs": sorted(runs),
    }


def _announced(outbox: Any) -> dict[str, list[str]]:
    """The actions each case announced, in the order its events were queued."""
    announced: dict[str, list[str]] = {}
    for event in sorted(outbox, key=lambda o: o.id):
        announced.setdefault(event.case_id, []).append(json.loads(event.payload)["data"]["action"])
    return announced


async def _events_hold(engine: AsyncEngine) -> None:
    """What every event must say whatever the timing: its trigger is one of the exposures it
    lists, and each of those belongs to its case."""
    async with engine.connect() as conn:
        case_of = dict((await conn.execute(select(Exposure.exposure_id, Exposure.case_id))).all())
        outbox = (await conn.execute(select(OutboxEvent))).all()
    for event in outbox:
        listed = json.loads(event.payload)["data"]["exposure_ids"]
        assert event.exposure_id in listed
        assert {case_of[exposure_id] for exposure_id in listed} == {event.case_id}


async def _checkpoint(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = (await conn.execute(select(IngestRun.checkpoint))).scalars().first()
    return value or 0


async def _committed_or_ended(
    process: subprocess.Popen[bytes], engine: AsyncEngine, before: int
) -> bool:
    return process.poll() is not None or await _checkpoint(engine) > before


async def _completed(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        states = (await conn.execute(select(IngestRun.state))).scalars().all()
    return states == ["completed"]


@pytest.mark.timeout(300)  # four child processes, each given a minute to commit
async def test_kill_9_at_any_moment_then_resume(
    database_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    customers, dump = _write_inputs(tmp_path)
    # Reference: an uninterrupted run (batched the same way) in its own database. (Case
    # events follow the batches: a customer whose stale password is in one batch and live one
    # in a later batch gets an opening and an escalation, in one batch a single event.)
    reference_env = environment(empty_database_url, EXPOSURE_INGEST_BATCH_EVENTS=BATCH)
    run_cli("db", "upgrade", env=reference_env, cwd=tmp_path)
    run_cli("enroll", str(customers), env=reference_env, cwd=tmp_path)
    run_cli("ingest", str(dump), env=reference_env, cwd=tmp_path)

    run_cli("enroll", str(customers), env=environment(database_url), cwd=tmp_path)
    env = environment(database_url, EXPOSURE_INGEST_BATCH_EVENTS=BATCH)
    kills_mid_run = 0
    async with db.open_engine(database_url) as engine:
        for attempt in range(4):
            process = subprocess.Popen(  # noqa: ASYNC220 (we poll it ourselves)
                [str(EXPOSURE_SCRIPT), "ingest", str(dump)],
                env={"PATH": os.environ["PATH"], **env},
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            before = await _checkpoint(engine)
            # Wait until this attempt has committed something, then kill it a random moment
            # later: mid-batch, mid-commit or between batches. (That pause is no wait for
            # anything: it spreads the kills over the run.)
            await eventually(
                functools.partial(_committed_or_ended, process, engine, before),
                within=60,
                every=0.01,
            )
            await asyncio.sleep(random.Random(attempt).uniform(0.0, 0.05))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills_mid_run += 1
            process.wait(timeout=60)
            if await _completed(engine):
                break
        if not await _completed(engine):
            await asyncio.to_thread(run_script, "ingest", str(dump), env=env, cwd=tmp_path)
        resumed = await _state(engine)
        await _events_hold(engine)
    assert kills_mid_run >= 2, "the ingest finished before it could be killed: enlarge the input"
    async with db.open_engine(empty_database_url) as reference_engine:
        reference = await _state(reference_engine)
        await _events_hold(reference_engine)
    assert resumed["exposures"] and resumed["sightings"] and resumed["outbox"]
    assert resumed["cases"] and any(c[4] is not None for c in resumed["cases"])
    # Several exposures share a case, and a case event covers all of them.
    assert any(len(c[5]) > 1 for c in resumed["cases"])
    statuses = {status for _, _, status, _, _ in resumed["exposures"]}
    assert {"live", "tweaked", "stale", "unknown"} <= statuses
    assert resumed == reference


async def _ingest_in_process(
    url: str, dump: Path, tmp_path: Path, **overrides: str
) -> dict[str, Any]:
    settings = load_settings(environment(url, **overrides), env_file=tmp_path / "absent.env")
    async with db.open_engine(url) as engine:
        index = await Ingestor.load_index(engine)
        async with PasswordVerifier(workers=1) as verifier:
            ingestor = Ingestor(engine, settings, index, verifier)
            result = await ingestor.ingest(dump, source="manual")
        state = await _state(engine)
        await _events_hold(engine)
    summary = result.as_json()
    summary.pop("verify_seconds")
    # Batches end at block boundaries on the native path, so a verdict reused within a batch
    # on one path can be a cached verdict from an earlier batch on the other.
    summary.pop("cached_verdicts")
    # Ordinals number events for checkpoints: a block's fast records come before its other
    # lines, so they differ between the paths; file and line are what an auditor follows.
    state["sightings"] = sorted((key, file, line) for key, _, file, line in state["sightings"])
    return {"summary": summary, **state}


async def test_native_fast_path_writes_what_the_python_path_writes(
    database_url: str, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers, dump = _write_inputs(tmp_path)
    folder = tmp_path / "leaks"
    folder.mkdir()
    dump = dump.rename(folder / "combo.txt")
    rng = random.Random(5)
    urls = []  # a URL list (the ulp format), with hits on broker and other sites
    for i in range(4_000):
        site = rng.choice(["trade.mirai-sec.co.jp", "shop.example"])
        login = f"resume.user{rng.randrange(CUSTOMERS)}@example.jp" if i % 9 == 0 else f"x{i}@x.org"
        urls.append(f"https://{site}/login:{login}:{rng.choice(['Sakura#2025', f'pw{i}'])}")
    (folder / "urls.txt").write_text("\n".join(urls) + "\n")
    with dump.open("a", encoding="utf-8") as out:  # traps for both paths, past the head
        out.write(
            "RESUME.USER7@EXAMPLE.JP:Sakura#2025\n"
            "resume.user8@example.jp:5f4dcc3b5aa765d61d8327deb882cf99\n"
            "resume.user9@example.jp:$2b$12$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWX\n"
            "RSM00011:Sakura#2025\n"
            "Sakura#2025:resume.user12@example.jp\n"
            "resume.user13@ｅｘａｍｐｌｅ.jp:Sakura#2025\n"
            "# a comment\n\nstranger@example.org\n"
            "https://trade.mirai-sec.co.jp/login:RESUME.USER3@example.jp:Sakura#2025\n"
        )
    run_cli("db", "upgrade", env=environment(empty_database_url), cwd=tmp_path)
    outcomes = []
    natively_matched = 0
    real_match = RecordBlock.match

    def counting_match(self: RecordBlock, *args: Any) -> tuple[list[int], bytes]:
        nonlocal natively_matched
        natively_matched += self.count
        return real_match(self, *args)

    monkeypatch.setattr(RecordBlock, "match", counting_match)
    for url, native in ((database_url, True), (empty_database_url, False)):
        monkeypatch.setattr(fastpath, "AVAILABLE", native)
        run_cli("enroll", str(customers), env=environment(url), cwd=tmp_path)
        outcomes.append(await _ingest_in_process(url, folder, tmp_path))
        if native:
            assert natively_matched > 50_000  # most lines went through the native path
    native_run, python_run = outcomes
    assert natively_matched and native_run["exposures"] and native_run["corpus"]
    assert [f["format"] for f in native_run["summary"]["files"]] == ["combo", "ulp"]
    assert native_run == python_run


@only_sqlite  # the spool lives beside SQLite
async def test_a_failed_spool_write_fails_its_batch_and_the_rerun_loses_nothing(
    database_url: str,
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's spool files are written while it is matched and decided, and awaited only
    before its commit: when writing them fails (a full disk), the batch does not commit, the
    run stops with the error, and running it again ends as an uninterrupted run does."""
    customers, dump = _write_inputs(tmp_path)
    for url in (database_url, empty_database_url):
        env = environment(url)
        run_cli("db", "upgrade", env=env, cwd=tmp_path)
        run_cli("enroll", str(customers), env=env, cwd=tmp_path)
    # One event per line on the Python path (the native one makes a block of a megabyte one
    # batch): 30 batches, each spooling its digests.
    monkeypatch.setattr(fastpath, "AVAILABLE", False)
    batches = {"EXPOSURE_INGEST_BATCH_EVENTS": "2000"}
    real_write, writes, failing = corpus_store.Spool.write, 0, 0

    def spool_write(self: corpus_store.Spool, parts: Any) -> list[str]:
        nonlocal writes
        writes += 1
        if writes == failing:
            raise OSError(28, "No space left on device")
        return real_write(self, parts)

    monkeypatch.setattr(corpus_store.Spool, "write", spool_write)
    reference = await _ingest_in_process(empty_database_url, dump, tmp_path, **batches)
    assert writes >= 3, "too few batches: make the input larger or the batches smaller"
    writes, failing = 0, writes // 2 + 1  # a batch in the middle
    with pytest.raises(OSError, match="No space left"):
        await _ingest_in_process(database_url, dump, tmp_path, **batches)
    async with db.open_engine(database_url) as engine:
        assert 0 < await _checkpoint(engine) < LINES  # batches before the failed one landed
        assert not await _completed(engine)
    monkeypatch.setattr(corpus_store.Spool, "write", real_write)
    rerun = await _ingest_in_process(database_url, dump, tmp_path, **batches)
    assert rerun["summary"]["resumed"]
    # Counters of verification work: the failed batch's steps had committed verdicts (not
    # counted before its checkpoint), which the second run reuses instead of verifying again.
    for counter in ("resumed", "verifications", "tweak_checks", "tweaked"):
        rerun["summary"].pop(counter)
        reference["summary"].pop(counter)
    assert rerun == reference
