"""Ingesting the sample stealer-log trees and truncated archives end to end, on real SQLite
and PostgreSQL: the summary counts the skipped files and the cut, the non-credential files
raise no alert, and a password before a cut is still found. Invented values only."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure import JsonObject
from exposure.ingest.pipeline import Ingestor
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import Settings
from exposure.store.models import Exposure
from tests.feeds import enrol

TREES = Path(__file__).resolve().parents[1] / "samples" / "stealer_trees"
FAMILIES = sorted(p.name for p in TREES.iterdir() if p.is_dir())


def _expected() -> tuple[int, int]:
    records = skipped = 0
    for family in FAMILIES:
        data = json.loads((TREES / family / "expected.json").read_text("utf-8"))
        records += len(data["records"])
        skipped += data["skipped_files"]["not_credentials"]
    return records, skipped


async def _ingest(engine: AsyncEngine, settings: Settings, path: Path) -> JsonObject:
    """The run's summary as the command prints it."""
    async with PasswordVerifier(workers=1) as verifier:
        ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
        return (await ingestor.ingest(path, source="samples")).as_json()


async def _exposures(engine: AsyncEngine) -> list[tuple[str | None, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(Exposure.customer_id, Exposure.action, Exposure.password_status)
        )
        return sorted((r[0], r[1], r[2]) for r in rows)


@pytest.mark.parametrize("zipped", [False, True], ids=["folders", "zip"])
async def test_stealer_trees_give_their_records_and_no_false_alert(
    engine: AsyncEngine, settings: Settings, tmp_path: Path, zipped: bool
) -> None:
    await enrol(
        engine,
        settings,
        [
            # Appear only in autofill files, a keychain, a seller readme: never an exposure.
            ("C_AUTOFILL", "hanako.autofill@example.jp", "", ""),
            ("C_UNKNOWN", "", "unknown", "Hidden#Pw1"),
            # Saved in RedLine's Passwords.txt for the broker: a live password.
            ("C_BROKER", "", "JPX10001", "Sakura#2025"),
        ],
    )
    every = tmp_path / "logs"
    for family in FAMILIES:
        shutil.copytree(TREES / family / "tree", every / family)
    path = every
    if zipped:
        path = tmp_path / "logs.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(every.rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(every).as_posix())

    summary = await _ingest(engine, settings, path)

    records, skipped = _expected()
    assert summary["records"] == records
    assert summary["skipped_files"] == {"not_credentials": skipped}
    assert summary["problems_total"] == 0
    read = [f["name"] for f in summary["files"] if f["format"] != "stealer_session"]
    assert all("assword" in name or "ookie" in name for name in read), read
    customers = {customer for customer, _, _ in await _exposures(engine)}
    assert customers == {"C_BROKER"}
    assert ("C_BROKER", "force_reset", "live") in await _exposures(engine)


def _tar_gz(name: str, data: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("kind", ["txt.gz", "tar.gz"])
async def test_a_truncated_archive_yields_its_readable_part_and_says_it_was_cut(
    engine: AsyncEngine, settings: Settings, tmp_path: Path, kind: str
) -> None:
    await enrol(engine, settings, [("C_CUT", "victim@example.jp", "", "Live#Pass9")])
    lines = [f"user{n}@example.com:{n:016x}" for n in range(200_000)]
    lines[150_000] = "victim@example.jp:Live#Pass9"  # well inside the part that survives
    data = ("\n".join(lines) + "\n").encode()
    whole = gzip.compress(data) if kind == "txt.gz" else _tar_gz("list.txt", data)
    path = tmp_path / f"dump.{kind}"
    path.write_bytes(whole[: len(whole) * 9 // 10])

    summary = await _ingest(engine, settings, path)

    assert 150_000 < summary["records"] < 200_000
    reasons = [p["reason"] for p in summary["problems"]]
    assert "truncated" in reasons
    (member,) = summary["files"]
    assert member["problem"] == "truncated"
    assert member["records"] == summary["records"]
    assert await _exposures(engine) == [("C_CUT", "force_reset", "live")]
