"""Large drop-folder dumps split into byte-range chunks that replicas claim: the split is exact,
registration idempotent, claims exclusive and leased, and a chunked ingest writes exactly what an
unchunked ingest of the same file writes."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import random
import re
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.ingest.large_files import register_file, split_ranges, work
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings
from exposure.store import corpus as corpus_store
from exposure.store import db
from exposure.store import large_files as q
from exposure.store.models import Case, Exposure, IngestChunk, LeakedPassword, OutboxEvent, Sighting
from tests.cli import run_cli
from tests.conftest import TEST_PEPPER, only_postgres
from tests.feeds import enrol, run_now, settings_for
from tests.integration import test_daemon as daemon
from tests.integration.receiver import Receiver, serving
from tests.leakgen import enrolment_csv, policy_cases
from tests.waiting import eventually

CHUNK = 700


def _check_split(data: bytes, path: Path, chunk_bytes: int) -> list[tuple[int, int]]:
    path.write_bytes(data)
    ranges = [(spec.start, spec.end) for spec in split_ranges(path, chunk_bytes)]
    assert [spec.chunk_no for spec in split_ranges(path, chunk_bytes)] == list(range(len(ranges)))
    # Contiguous from the first byte to the last: every byte in exactly one range.
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data) - 1
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert start == end + 1
    for start, end in ranges:
        assert start <= end
        assert start == 0 or data[start - 1 : start] == b"\n"  # begins a line
        if end != len(data) - 1:
            assert data[end : end + 1] == b"\n"  # ends one
    assert b"".join(data[start : end + 1] for start, end in ranges) == data
    return ranges


def test_split_is_line_aligned_and_covers_every_byte_once(tmp_path: Path) -> None:
    rng = random.Random(20251126)
    path = tmp_path / "dump.txt"
    for _ in range(300):
        lines = [
            bytes(rng.choices(b"ab:@.\r", k=rng.choice((0, 1, 5, 40, 3000))))
            for _ in range(rng.randint(1, 60))
        ]
        data = b"\n".join(lines) + rng.choice((b"", b"\n", b"\n\n"))
        if not data:
            continue
        _check_split(data, path, rng.choice((1, 2, 7, 64, 500, 4096)))
    # No trailing newline, and a line far longer than a chunk: that range simply grows.
    data = b"a:1\n" + b"x" * 5000 + b"\n" + b"b:2\n" * 100 + b"c:3"
    ranges = _check_split(data, path, 100)
    assert ranges[0] == (0, 5004) and len(ranges) > 3 and ranges[-1][1] == len(data) - 1
    assert _check_split(b"no newline at all", path, 4) == [(0, 16)]


def _filler(n: int) -> str:
    return f"filler.{n:05d}@example.org:Filler-{n}"


def _dump_lines(filler: int = 120) -> list[str]:
    """Every policy case twice, far apart, among filler and rejected lines."""
    cases = [line for case in policy_cases() for line in case.lines]
    lines = [_filler(n) for n in range(filler)]
    for number, line in enumerate(cases):
        lines.insert(number * 7, line)
        lines.insert(len(lines) - number * 5, line)
    lines[40:40] = ["", "# a comment", "garbage-without-delimiter"]
    return lines


async def _settings(
    engine: AsyncEngine, database_url: str, tmp_path: Path, chunk: int = CHUNK
) -> tuple[Settings, Path]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.1",
        EXPOSURE_FOLDER_CHUNK_BYTES=str(chunk),
    )
    rows = [(c.customer_id, c.email, c.login_id, c.enrolled_password or "") for c in policy_cases()]
    await enrol(engine, settings, rows)
    return settings, inbox


async def _chunk_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(IngestChunk).order_by(IngestChunk.id))).all())


async def test_registration_is_idempotent_and_only_for_plain_line_formats(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    text = "\n".join(_dump_lines()) + "\n"
    big = inbox / "big.txt"
    big.write_text(text)

    first = await register_file(engine, settings, big, chunk_bytes=CHUNK, source="folder")
    assert first is not None and first.chunks > 3 and first.done == 0
    rows = await _chunk_rows(engine)
    assert len(rows) == first.chunks and {r.format for r in rows} == {"combo"}
    assert {r.path for r in rows} == {str(big.resolve())}
    # A second look, and the same bytes under another name: nothing new.
    again = await register_file(engine, settings, big, chunk_bytes=CHUNK, source="folder")
    copy = inbox / "copy.txt"
    shutil.copy(big, copy)
    same = await register_file(engine, settings, copy, chunk_bytes=CHUNK, source="folder")
    assert again == first and same == first
    assert len(await _chunk_rows(engine)) == first.chunks

    # Not chunked (None: ingested whole): small, compressed, CSV (its header is on line 1).
    size = big.stat().st_size
    small = await register_file(engine, settings, big, chunk_bytes=size, source="folder")
    (inbox / "big.txt.gz").write_bytes(gzip.compress(text.encode()))
    packed = await register_file(
        engine, settings, inbox / "big.txt.gz", chunk_bytes=10, source="folder"
    )
    csv = inbox / "rows.csv"
    csv.write_text("email,password\n" + "".join(f"u{n}@example.org,p{n}\n" for n in range(200)))
    table = await register_file(engine, settings, csv, chunk_bytes=100, source="folder")
    assert (small, packed, table) == (None, None, None)
    assert len(await _chunk_rows(engine)) == first.chunks


async def test_concurrent_claimers_never_share_a_chunk(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    big = inbox / "big.txt"
    big.write_text("".join(_filler(n) + "\n" for n in range(1000)))
    registered = await register_file(engine, settings, big, chunk_bytes=200, source="folder")
    assert registered is not None and registered.chunks > 100

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        while True:
            now = utcnow()
            # Each claim on its own pooled connection, held open a moment so that the other
            # claimers run into the locked row and must skip it.
            async with engine.begin() as conn:
                lease_until = now + timedelta(minutes=5)
                chunk = await q.claim(
                    conn, owner=name, now=now, lease_until=lease_until, max_attempts=5
                )
                await asyncio.sleep(0.005)
            if chunk is None:
                return got
            got.append(chunk.id)

    results = await asyncio.gather(*(claimer(f"claimer-{n}") for n in range(8)))
    claimed = [chunk_id for got in results for chunk_id in got]
    assert len(claimed) == len(set(claimed)) == registered.chunks
    rows = await _chunk_rows(engine)
    assert all(r.state == "claimed" and r.attempts == 1 for r in rows)
    owners = {r.id: r.lease_owner for r in rows}
    for number, got in enumerate(results):
        assert all(owners[chunk_id] == f"claimer-{number}" for chunk_id in got)


async def test_an_expired_lease_makes_the_chunk_claimable_again(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    big = inbox / "big.txt"
    big.write_text(_filler(1) + "\n" + _filler(2) + "\n")
    registered = await register_file(engine, settings, big, chunk_bytes=20, source="folder")
    assert registered is not None and registered.chunks == 2
    now = utcnow()
    lease = timedelta(seconds=60)

    async def claim(owner: str, at: Any) -> q.ClaimedChunk | None:
        async with engine.begin() as conn:
            return await q.claim(conn, owner=owner, now=at, lease_until=at + lease, max_attempts=5)

    first = await claim("dead", now)
    second = await claim("alive", now)
    assert first is not None and second is not None and first.id != second.id
    assert await claim("late", now + timedelta(seconds=59)) is None  # both leases hold
    taken = await claim("late", now + timedelta(seconds=61))
    assert taken is not None and taken.id == first.id and taken.attempts == 2
    async with engine.begin() as conn:
        # The dead holder's lease is gone: its finish would be refused (and rolled back).
        assert not await q.mark_done(conn, first.id, "dead", utcnow())
        assert await q.mark_done(conn, taken.id, "late", utcnow())
    rows = {r.id: r for r in await _chunk_rows(engine)}
    assert rows[first.id].state == "done" and rows[first.id].lease_owner == "late"
    assert rows[second.id].state == "claimed" and rows[second.id].lease_owner == "alive"


def _line_of(data: bytes, file: str, line_no: int) -> int:
    """A sighting's line in the whole file (chunked sightings count from their range start)."""
    found = re.fullmatch(r".+@(\d+)-(\d+)", file)
    if found is None:
        return line_no
    return data[: int(found.group(1))].count(b"\n") + line_no


async def _outcome(engine: AsyncEngine, data: bytes) -> dict[str, Any]:
    """Exposures, sightings, outbox and corpus by natural keys (no ids, no times)."""
    await corpus_store.compact(engine)
    async with engine.connect() as conn:
        exposures = (await conn.execute(select(Exposure))).all()
        key = {
            e.exposure_id: (e.customer_id, e.identifier_kind, e.password_fp, e.site_domain)
            for e in exposures
        }
        seen = (await conn.execute(select(Sighting))).all()
        events = (await conn.execute(select(OutboxEvent))).all()
        cases = (await conn.execute(select(Case))).all()
        corpus = (await conn.execute(select(LeakedPassword.sha1, LeakedPassword.count))).all()
    members: dict[str, list[Any]] = {}
    for e in exposures:
        members.setdefault(e.case_id, []).append(key[e.exposure_id])
    return {
        "cases": Counter(
            (
                c.customer_id,
                c.state,
                c.action,
                c.severity,
                c.announced_action,
                tuple(sorted(members[c.case_id])),
            )
            for c in cases
        ),
        "event_cases": Counter((o.event_type, tuple(sorted(members[o.case_id]))) for o in events),
        "exposures": {
            key[e.exposure_id]: (e.action, e.severity, e.password_status, e.occurrences)
            for e in exposures
        },
        "sightings": Counter(
            (key[s.exposure_id], _line_of(data, s.file, s.line_no), s.leak_type) for s in seen
        ),
        "outbox": Counter((key[o.exposure_id], o.event_type) for o in events),
        "corpus": dict(corpus),
    }


async def test_chunked_ingest_writes_exactly_what_an_unchunked_one_does(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    data = ("\n".join(_dump_lines()) + "\n").encode()
    (inbox / "leak.txt").write_bytes(data)
    baseline_file = tmp_path / "baseline" / "leak.txt"
    baseline_file.parent.mkdir()
    baseline_file.write_bytes(data)

    summary = await run_now(engine, settings, "folder")  # what `connectors run folder` does

    assert summary["outcome"] == "success" and summary["pages"] == 1
    assert (inbox / "processed" / "leak.txt").exists() and not (inbox / "leak.txt").exists()
    rows = await _chunk_rows(engine)
    assert len(rows) > 3 and all(r.state == "done" and r.done_at for r in rows)
    chunked = await _outcome(engine, data)
    async with engine.connect() as conn:
        files = set((await conn.execute(select(Sighting.file))).scalars())
    assert len(files) > 1 and all(re.fullmatch(r"leak\.txt@\d+-\d+", f) for f in files)

    url = f"sqlite+aiosqlite:///{tmp_path / 'baseline.db'}"
    async with db.open_engine(url) as baseline:
        await db.upgrade(baseline, bytes.fromhex(TEST_PEPPER))
        base_settings = settings_for(url, tmp_path)
        rows_in = [
            (c.customer_id, c.email, c.login_id, c.enrolled_password or "") for c in policy_cases()
        ]
        await enrol(baseline, base_settings, rows_in)
        index = await Ingestor.load_index(baseline)
        async with PasswordVerifier(workers=1) as verifier:
            ingestor = Ingestor(baseline, base_settings, index, verifier)
            await ingestor.ingest(baseline_file, source="folder")
        whole = await _outcome(baseline, data)

    assert chunked == whole
    # And it is not vacuous: every case's exposure, seen twice, with events to send.
    assert len(whole["exposures"]) == len(policy_cases())
    assert all(occurrences == 2 for *_, occurrences in whole["exposures"].values())
    assert sum(whole["outbox"].values()) == sum(c.action != "none" for c in policy_cases())
    assert sum(whole["cases"].values()) == len({c.customer_id for c in policy_cases()})


async def test_a_second_look_at_a_finished_file_moves_it_without_reingesting(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    data = "\n".join(_dump_lines()) + "\n"
    (inbox / "leak.txt").write_text(data)
    await run_now(engine, settings, "folder")
    async with engine.connect() as conn:
        before = (await conn.execute(select(func.count()).select_from(Sighting))).scalar_one()
    # The same dump dropped again (or left behind by a crash before the move).
    (inbox / "again.txt").write_text(data)
    summary = await run_now(engine, settings, "folder")
    async with engine.connect() as conn:
        after = (await conn.execute(select(func.count()).select_from(Sighting))).scalar_one()
    assert summary["outcome"] == "success" and after == before > 0
    assert (inbox / "processed" / "again.txt").exists() and not (inbox / "again.txt").exists()


async def test_a_scheduled_run_leaves_the_file_to_the_chunk_workers(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _settings(engine, database_url, tmp_path)
    (inbox / "leak.txt").write_text("\n".join(_dump_lines()) + "\n")
    summary = await run_now(engine, settings, "folder", once=False)  # as the daemon runs it
    assert summary["outcome"] == "success" and summary["records"] == 0
    assert (inbox / "leak.txt").exists()  # pending chunks: not moved, not failed
    rows = await _chunk_rows(engine)
    assert rows and all(r.state == "pending" for r in rows)
    # A replica's chunks job works them off and moves the file.
    index = await Ingestor.load_index(engine)
    async with PasswordVerifier(workers=1) as verifier:

        async def make() -> Ingestor:
            return Ingestor(engine, settings, index, verifier)

        done = await work(engine, make, owner="replica-x")
    assert len(done) == len(rows)
    assert (inbox / "processed" / "leak.txt").exists() and not (inbox / "leak.txt").exists()
    assert {r.lease_owner for r in await _chunk_rows(engine)} == {"replica-x"}


async def test_the_finisher_moves_the_file_where_its_record_says(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    """The done folder is the connector's word, kept with the ranges: a worker that never saw
    the page moves the file there, or leaves it in place when there is none."""
    settings, inbox = await _settings(engine, database_url, tmp_path)
    data = "\n".join(_dump_lines()) + "\n"
    (inbox / "kept.txt").write_text(data)
    (inbox / "elsewhere.txt").write_text(data.replace("@", "+x@"))
    archive = tmp_path / "archive"
    for name, folder in (("kept.txt", None), ("elsewhere.txt", archive)):
        registered = await register_file(
            engine, settings, inbox / name, chunk_bytes=CHUNK, source="test", done_folder=folder
        )
        assert registered is not None and registered.done_folder == (folder and str(folder))
    index = await Ingestor.load_index(engine)
    async with PasswordVerifier(workers=1) as verifier:

        async def make() -> Ingestor:
            return Ingestor(engine, settings, index, verifier)

        done = await work(engine, make, owner="replica-y")
    assert len(done) == len(await _chunk_rows(engine))
    assert (inbox / "kept.txt").exists()  # no done folder: it stays
    assert (archive / "elsewhere.txt").exists() and not (inbox / "elsewhere.txt").exists()
    assert not (inbox / "processed" / "kept.txt").exists()


@only_postgres  # replicas share PostgreSQL
@pytest.mark.timeout(300)
async def test_two_replicas_share_the_chunks_of_one_dump(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    cases = policy_cases()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with serving(Receiver()) as receiver:
        env = daemon.daemon_env(
            database_url, inbox, receiver.url, EXPOSURE_FOLDER_CHUNK_BYTES="512"
        )
        (tmp_path / "customers.csv").write_text(enrolment_csv(cases))
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
        logs = [tmp_path / f"replica{n}.log" for n in range(2)]
        replicas = [daemon.start(env, tmp_path, log) for log in logs]
        try:
            daemon.drop(inbox, "leak.txt", "\n".join(_dump_lines(filler=4000)) + "\n")
            expected = sum(case.action != "none" for case in cases)
            await eventually(lambda: (inbox / "processed" / "leak.txt").exists(), within=120)
            await eventually(lambda: len(receiver.ids()) >= expected, within=60)
            # No duplicate can still be on its way once every chunk is done (the file is moved
            # after its last chunk), every event is marked delivered, and both replicas have
            # stopped, which finishes their in-flight sends.
            await eventually(lambda: daemon.outbox_delivered(engine, expected), within=60)
        finally:
            codes = [daemon.stop(process) for process in replicas]
    assert codes == [0, 0]
    assert len(receiver.ids()) == expected
    assert all(count == 1 for count in receiver.ids().values()), receiver.ids()
    rows = await _chunk_rows(engine)
    assert len(rows) > 100 and all(r.state == "done" for r in rows)
    # Both replicas ingested chunks: each one's lease owner (host:daemon<slot>, in its
    # "running" line) among the done rows.
    owners = Counter(r.lease_owner for r in rows)
    assert len(owners) == 2, owners
    running = [
        next(line for line in daemon.log_lines(log) if line["msg"] == "exposure daemon running")
        for log in logs
    ]
    assert set(owners) == {line["lease_owner"] for line in running}
    for log in logs:
        assert any(line["msg"].startswith("chunks: chunk") for line in daemon.log_lines(log))
    assert not (inbox / "leak.txt").exists()
