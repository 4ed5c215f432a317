"""The folder connector: dropped files and folders are ingested once and moved to processed/
or failed/ (with a reason and no plaintext); files still being written are left alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings
from exposure.store.models import OutboxEvent
from tests.feeds import enrol, exposures, run_now, settings_for, sightings
from tests.leakgen import CURRENT

CUSTOMERS = [
    ("D01", "folder.user1@example.jp", "FLD00001", CURRENT),
    ("D02", "folder.user2@example.jp", "FLD00002", ""),
]
PLAINTEXT = "folder.user2@example.jp"


async def _setup(engine: AsyncEngine, database_url: str, tmp_path: Path) -> tuple[Settings, Path]:
    inbox = tmp_path / "inbox"
    settings = settings_for(
        database_url,
        tmp_path,
        EXPOSURE_FOLDER_PATH=str(inbox),
        EXPOSURE_FOLDER_SETTLE_SECONDS="0.3",
    )
    await enrol(engine, settings, CUSTOMERS)
    inbox.mkdir()
    return settings, inbox


async def test_dropped_entries_are_ingested_once_and_moved(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _setup(engine, database_url, tmp_path)
    (inbox / "combo.txt").write_text(f"folder.user1@example.jp:{CURRENT}\n")
    tree = inbox / "JP[0A1B2C3D] [2025-05-01T10-00-00]"
    tree.mkdir()
    (tree / "Passwords.txt").write_text(
        f"URL: https://trade.mirai-sec.co.jp/login\nUsername: {PLAINTEXT}\nPassword: pw-1\n"
    )
    (inbox / "broken.zip").write_bytes(b"PK\x03\x04" + f"{PLAINTEXT}:pw".encode())
    (inbox / ".uploading.txt").write_text(f"{PLAINTEXT}:pw\n")
    (inbox / "later.txt.part").write_text(f"{PLAINTEXT}:pw\n")

    summary = await run_now(engine, settings, "folder")

    # Three entries, then a page that counts the one that went to failed/.
    assert summary["outcome"] == "success" and summary["pages"] == 4
    assert summary["skipped"] == {"failed_no_records": 1}
    processed = sorted(p.name for p in (inbox / "processed").iterdir())
    assert processed == ["JP[0A1B2C3D] [2025-05-01T10-00-00]", "combo.txt"]
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert failed == ["broken.zip", "broken.zip.reason.txt"]
    reason = (inbox / "failed" / "broken.zip.reason.txt").read_text()
    assert "no records could be read" in reason and PLAINTEXT not in reason
    left = sorted(p.name for p in inbox.iterdir() if p.name not in ("processed", "failed"))
    assert left == [".uploading.txt", "later.txt.part"]
    found = {e.customer_id: e for e in await exposures(engine)}
    assert found["D01"].action == "force_reset" and found["D01"].source == "folder"
    assert found["D02"].site_domain == "trade.mirai-sec.co.jp"

    # Nothing new in the inbox: nothing happens.
    idle = await run_now(engine, settings, "folder")
    assert idle["pages"] == 0


async def test_a_crash_before_the_move_reingests_as_sightings_only(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _setup(engine, database_url, tmp_path)
    (inbox / "combo.txt").write_text(f"folder.user1@example.jp:{CURRENT}\n")
    await run_now(engine, settings, "folder")
    async with engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
    before = await exposures(engine)
    # The commit happened, the move did not (the process died in between).
    (inbox / "processed" / "combo.txt").rename(inbox / "combo.txt")

    again = await run_now(engine, settings, "folder")

    assert again["new_exposures"] == {"force_reset": 0, "notify": 0, "none": 0}
    assert again["events"] == 0 and again["sightings"] == 1
    after = await exposures(engine)
    assert [e.exposure_id for e in after] == [e.exposure_id for e in before]
    assert after[0].occurrences == before[0].occurrences + 1
    async with engine.connect() as conn:
        outbox = select(func.count()).select_from(OutboxEvent)
        assert (await conn.execute(outbox)).scalar_one() == events
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["combo.txt"]

    # A different file under a name already processed keeps both.
    (inbox / "combo.txt").write_text("stranger@example.org:pw\n")
    await run_now(engine, settings, "folder")
    names = sorted(p.name for p in (inbox / "processed").iterdir())
    assert len(names) == 2 and names[1] == "combo.txt" and names[0].endswith("Z-combo.txt")


async def test_a_file_still_being_written_waits_until_it_is_stable(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    settings, inbox = await _setup(engine, database_url, tmp_path)
    growing = inbox / "growing.txt"
    growing.write_text(f"folder.user1@example.jp:{CURRENT}\n")
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with growing.open("a") as handle:
                handle.write(f"stranger{n}@example.org:pw\n")
            await asyncio.sleep(0.05)

    task = asyncio.create_task(writer())
    try:
        busy = await run_now(engine, settings, "folder")
    finally:
        stop.set()
        await task
    assert busy["pages"] == 0 and growing.exists()
    assert await sightings(engine) == []

    done = await run_now(engine, settings, "folder")
    assert done["pages"] == 1 and not growing.exists()
    assert (inbox / "processed" / "growing.txt").exists()
    assert [e.customer_id for e in await exposures(engine)] == ["D01"]
