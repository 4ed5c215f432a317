"""Hostile drop-folder entries: FIFOs, devices, links out of the inbox and into it. Each ends
in a clear outcome within seconds (moved to failed/ with its reason, counted in the run's
summary), nothing outside the inbox is read, and the rest of the inbox is ingested. A file
written to while it is ingested is ingested again; a manual run with a failed entry exits 1."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.base import Stored
from connectors.folder import FolderConnector, FolderSettings
from exposure.ingest.large_files import register_file, work
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.store import corpus as corpus_store
from exposure.store.models import LeakedPassword
from tests.cli import run_cli
from tests.conftest import environment
from tests.feeds import enrol, exposures, run_now, settings_for
from tests.leakgen import CURRENT

CUSTOMERS = [
    ("H01", "hostile.user1@example.jp", "HST00001", CURRENT),
    ("H02", "hostile.user2@example.jp", "HST00002", CURRENT),
    ("H03", "hostile.user3@example.jp", "HST00003", CURRENT),
]
OUTSIDE_PASSWORD = "Outside-Secret-9f3e"


async def _corpus_has(engine: AsyncEngine, password: str) -> bool:
    await corpus_store.compact(engine)  # fold whatever ingests staged
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).digest()
    async with engine.connect() as conn:
        found = await conn.execute(select(LeakedPassword.sha1).where(LeakedPassword.sha1 == digest))
        return found.first() is not None


async def test_hostile_entries_are_refused_and_the_rest_is_ingested(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.1",
    )
    await enrol(engine, settings, CUSTOMERS)
    inbox.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    # What a symlink could reach: a shadow-like file and a folder outside the inbox.
    (outside / "shadow").write_text(f"hostile.user3@example.jp:{OUTSIDE_PASSWORD}\n")
    (outside / "tree").mkdir()
    (outside / "tree" / "Passwords.txt").write_text(f"hostile.user3@example.jp:{CURRENT}\n")

    (inbox / "good.txt").write_text(f"hostile.user1@example.jp:{CURRENT}\n")
    os.mkfifo(inbox / "pipe.txt")  # opened, it would block until a writer comes: never
    (inbox / "zero.txt").symlink_to("/dev/zero")  # read, it never ends
    (inbox / "shadow.txt").symlink_to(outside / "shadow")  # out of the inbox
    (inbox / "tree").symlink_to(outside / "tree")  # a folder out of the inbox
    (inbox / "alias.txt").symlink_to(inbox / "good.txt")  # into the inbox
    folder = inbox / "dropped-folder"  # a folder with hostile members and a good one
    folder.mkdir()
    (folder / "combo.txt").write_text(f"hostile.user2@example.jp:{CURRENT}\n")
    os.mkfifo(folder / "pipe.txt")
    (folder / "shadow.txt").symlink_to(outside / "shadow")

    summary = await asyncio.wait_for(run_now(engine, settings, "folder"), 30)

    assert summary["outcome"] == "success"
    assert summary["skipped"] == {"failed_special_file": 1, "failed_symlink": 4}
    processed = sorted(p.name for p in (inbox / "processed").iterdir())
    assert processed == ["dropped-folder", "good.txt"]
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    refused = ["alias.txt", "pipe.txt", "shadow.txt", "tree", "zero.txt"]
    assert failed == sorted([*refused, *(f"{name}.reason.txt" for name in refused)])
    for name in refused:
        moved = inbox / "failed" / name
        assert moved.is_symlink() or moved.is_fifo()  # moved as they were, never opened
        reason = (inbox / "failed" / f"{name}.reason.txt").read_text()
        expected = "a fifo, not a regular file" if name == "pipe.txt" else "a symbolic link"
        assert reason.startswith(expected), reason
    assert [p.name for p in inbox.iterdir() if p.name not in ("processed", "failed")] == []
    # The good entries were ingested; nothing outside the inbox was read.
    assert sorted(e.customer_id for e in await exposures(engine)) == ["H01", "H02"]
    assert not await _corpus_has(engine, OUTSIDE_PASSWORD)
    assert await _corpus_has(engine, CURRENT)
    assert (outside / "shadow").read_text().startswith("hostile.user3")  # untouched


async def test_a_file_changed_during_its_ingest_is_ingested_again(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.1",
    )
    await enrol(engine, settings, CUSTOMERS)
    inbox.mkdir()
    growing = inbox / "growing.txt"
    growing.write_text(f"hostile.user1@example.jp:{CURRENT}\n")
    connector = FolderConnector(
        FolderSettings.from_environ(settings.environ),
        session=None,
        inputs=None,  # type: ignore[arg-type]
    )
    pages = connector.pages(None)
    page = await anext(pages)
    assert list(page.files) == [growing]  # type: ignore[attr-defined]
    async with PasswordVerifier(workers=1) as verifier:
        ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
        ingested = await ingestor.ingest(growing, source="folder")
        # The writer appends after the read reached the end: the new line was not read.
        with growing.open("a") as handle:
            handle.write(f"hostile.user2@example.jp:{CURRENT}\n")
        try:
            await pages.asend(Stored(ingested.records, ingested.matched_records, (ingested,)))
        except StopAsyncIteration:
            pass
    assert growing.exists() and not (inbox / "processed" / "growing.txt").exists()
    assert [e.customer_id for e in await exposures(engine)] == ["H01"]

    again = await run_now(engine, settings, "folder")  # settled now: taken again, whole
    assert again["pages"] == 1 and (inbox / "processed" / "growing.txt").exists()
    assert sorted(e.customer_id for e in await exposures(engine)) == ["H01", "H02"]


def test_a_manual_run_with_a_failed_entry_exits_1(database_url: str, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.txt").write_text("someone@example.org:pw\n")
    (inbox / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    env = environment(
        database_url, EXPOSURE_FOLDER_PATH=str(inbox), EXPOSURE_FOLDER_SETTLE_SECONDS="0.1"
    )
    done = run_cli("connectors", "run", "folder", "--once", env=env, cwd=tmp_path, check=False)
    assert done.returncode == 1
    assert '"failed_no_records": 1' in done.stdout  # the summary on stdout says which
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: connector folder: 1 item(s) skipped: failed_no_records=1"]
    assert (inbox / "failed" / "broken.zip").exists() and (
        inbox / "processed" / "good.txt"
    ).exists()


async def test_a_large_file_appended_to_while_in_chunks_is_split_again(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.1",
        EXPOSURE_FOLDER_CHUNK_BYTES="1024",
    )
    await enrol(engine, settings, CUSTOMERS)
    inbox.mkdir()
    big = inbox / "big.txt"
    lines = [f"filler.{n:05d}@example.org:Filler-{n}" for n in range(200)]
    big.write_text("\n".join([f"hostile.user1@example.jp:{CURRENT}", *lines]) + "\n")
    registered = await register_file(
        engine, settings, big, chunk_bytes=1024, source="folder", done_folder=inbox / "processed"
    )
    assert registered is not None and registered.chunks > 3
    with big.open("a") as handle:  # appended after the split: past the last range
        handle.write(f"hostile.user2@example.jp:{CURRENT}\n")

    async with PasswordVerifier(workers=1) as verifier:
        index = await Ingestor.load_index(engine)

        async def make() -> Ingestor:
            return Ingestor(engine, settings, index, verifier)

        done = await work(engine, make, owner="test-worker")
    assert len(done) == registered.chunks
    assert big.exists()  # not moved: the appended line was never read
    assert [e.customer_id for e in await exposures(engine)] == ["H01"]

    again = await run_now(engine, settings, "folder")  # split again as it is now, and ingested
    assert again["outcome"] == "success"
    assert (inbox / "processed" / "big.txt").exists() and not big.exists()
    assert sorted(e.customer_id for e in await exposures(engine)) == ["H01", "H02"]
