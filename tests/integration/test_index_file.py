"""The enrolled index saved beside a SQLite database, or in the host's cache for PostgreSQL
(exposure.store.index_file): an ingest maps the file while the database's generation names it,
and never misses a customer enrolled after it was saved."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from exposure.store import db, index_file
from tests.cli import run_cli
from tests.conftest import environment, only_postgres

HEADER = "customer_id,email,login_id,phone,password_hash\n"


async def _enrolled(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row: str
) -> tuple[dict[str, str], Path]:
    """A database with one customer enrolled by the CLI, its environment and index folder (on
    PostgreSQL a cache folder of this test's own: the session's holds other tests' files)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = environment(database_url)
    _enrol(env, tmp_path, "first.csv", row)
    async with db.open_engine(database_url) as engine:
        folder = index_file.folder_of(engine)
    assert folder is not None
    return env, folder


def _unused_for_a_day(path: Path) -> None:
    past = time.time() - index_file.UNUSED_SECONDS - 60
    os.utime(path, (past, past))


def _enrol(env: dict[str, str], tmp_path: Path, name: str, row: str) -> None:
    (tmp_path / name).write_text(HEADER + row + "\n", "utf-8")
    run_cli("enroll", str(tmp_path / name), env=env, cwd=tmp_path)


def _ingest(env: dict[str, str], tmp_path: Path, name: str, lines: str) -> tuple[str, int]:
    """How the ingest got its index ("mapped" or "built"), and how many records matched."""
    (tmp_path / name).write_text(lines, "utf-8")
    result = run_cli("ingest", str(tmp_path / name), env=env, cwd=tmp_path)
    how = "mapped" if "mapped from its file" in result.stderr else "built"
    assert how == "mapped" or "built from the store" in result.stderr, result.stderr
    return how, int(json.loads(result.stdout)["matched_records"])


async def test_an_ingest_maps_the_saved_index_until_customers_are_added(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, folder = await _enrolled(
        database_url, tmp_path, monkeypatch, "IDX-1,hana.first@example.jp,,,"
    )
    saved = sorted(folder.iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".u64"  # enrol leaves it ready

    assert _ingest(env, tmp_path, "one.txt", "hana.first@example.jp:Sakura#1\n") == ("mapped", 1)

    # A customer enrolled after the file was saved: the file no longer names all of them, and
    # mapping it would miss the new one.
    _enrol(env, tmp_path, "second.csv", "IDX-2,ren.second@example.jp,,,")
    (current,) = set(folder.iterdir()) - set(saved)
    assert _ingest(env, tmp_path, "new.txt", "ren.second@example.jp:Kaede#1\n") == ("mapped", 1)
    # The stale file stays until no ingest has mapped it for a day (a shared cache may hold
    # other databases' current files); the next save removes it.
    _unused_for_a_day(saved[0])
    current.unlink()  # as after an enrolment through the API: no file for this generation
    assert _ingest(env, tmp_path, "two.txt", "ren.second@example.jp:Kaede#2\n") == ("built", 1)
    assert sorted(folder.iterdir()) == [current]  # saved again; the day-old file removed
    assert _ingest(env, tmp_path, "three.txt", "ren.second@example.jp:Kaede#3\n") == ("mapped", 1)


async def test_a_damaged_file_is_rebuilt_and_an_upgrade_trusts_none(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, folder = await _enrolled(
        database_url, tmp_path, monkeypatch, "IDX-3,sora.third@example.jp,,,"
    )
    (saved,) = folder.iterdir()
    saved.write_bytes(saved.read_bytes()[:-3])  # not whole prefixes
    assert _ingest(env, tmp_path, "a.txt", "sora.third@example.jp:Umi#1\n") == ("built", 1)
    assert saved.stat().st_size % 8 == 0  # saved again, whole

    run_cli("db", "upgrade", env=env, cwd=tmp_path)
    _unused_for_a_day(saved)
    assert _ingest(env, tmp_path, "b.txt", "sora.third@example.jp:Umi#2\n") == ("built", 1)
    assert not saved.exists()  # replaced by the file of the new generation


def test_a_generation_that_is_not_one_names_no_file(tmp_path: Path) -> None:
    # The generation comes from the database and names a file: nothing else may.
    folder = tmp_path / "exposure.db-index"
    index_file.save(folder, "../outside", np.arange(4, dtype=np.uint64))
    assert not (tmp_path / "outside.u64").exists() and not folder.exists()
    assert index_file.load(folder, "../outside") is None
    good = "0" * 32
    index_file.save(folder, good, np.arange(4, dtype=np.uint64))
    loaded = index_file.load(folder, good)
    assert loaded is not None and loaded.tolist() == [0, 1, 2, 3]


@only_postgres
async def test_postgresql_indexes_live_in_the_hosts_cache(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's index files live in one folder of the host's cache (a generation names
    one set of identifiers whatever the database); none is kept without a cache or a home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    async with db.open_engine(database_url) as engine:
        assert index_file.folder_of(engine) == tmp_path / "cache/exposure/enrolled-indexes"
    async with db.open_engine("sqlite+aiosqlite:///:memory:") as engine:
        assert index_file.folder_of(engine) is None
    # No cache and no home (a service account): no folder, and the ingest builds its index.
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(Path, "home", _no_home)
    async with db.open_engine(database_url) as engine:
        assert index_file.folder_of(engine) is None


def _no_home() -> Path:
    raise RuntimeError("Could not determine home directory.")
