"""The enrolled index saved beside a SQLite database (exposure.store.index_file): an ingest maps
the file while the database's generation names it, and never misses a customer enrolled after
it was saved."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.cli import CliResult, run_cli
from tests.conftest import environment, only_sqlite

HEADER = "customer_id,email,login_id,phone,password_hash\n"


def _folder(database_url: str) -> Path:
    return Path(str(make_url(database_url).database) + "-index")


def _ingest(env: dict[str, str], tmp_path: Path, name: str, lines: str) -> CliResult:
    (tmp_path / name).write_text(lines, "utf-8")
    return run_cli("ingest", str(tmp_path / name), env=env, cwd=tmp_path)


def _matched(result: CliResult) -> int:
    return int(json.loads(result.stdout)["matched_records"])


@only_sqlite
async def test_an_ingest_maps_the_saved_index_until_customers_are_added(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    folder = _folder(database_url)
    (tmp_path / "first.csv").write_text(HEADER + "IDX-1,hana.first@example.jp,,,\n", "utf-8")
    run_cli("enroll", str(tmp_path / "first.csv"), env=env, cwd=tmp_path)
    saved = sorted(folder.iterdir())
    assert len(saved) == 1 and saved[0].suffix == ".u64"  # enrol leaves it ready

    first = _ingest(env, tmp_path, "one.txt", "hana.first@example.jp:Sakura#1\n")
    assert "mapped from its file" in first.stderr
    assert _matched(first) == 1

    # A customer enrolled after the file was saved: the file no longer names all of them, and
    # mapping it would miss the new one.
    (tmp_path / "second.csv").write_text(HEADER + "IDX-2,ren.second@example.jp,,,\n", "utf-8")
    run_cli("enroll", str(tmp_path / "second.csv"), env=env, cwd=tmp_path)
    after = sorted(folder.iterdir())
    assert len(after) == 1 and after != saved  # the stale file is gone
    mapped = _ingest(env, tmp_path, "new.txt", "ren.second@example.jp:Kaede#1\n")
    assert "mapped from its file" in mapped.stderr
    assert _matched(mapped) == 1
    after[0].unlink()  # as after an enrolment through the API: no file for this generation
    second = _ingest(env, tmp_path, "two.txt", "ren.second@example.jp:Kaede#2\n")
    assert "built from the store" in second.stderr
    assert _matched(second) == 1
    third = _ingest(env, tmp_path, "three.txt", "ren.second@example.jp:Kaede#3\n")
    assert "mapped from its file" in third.stderr
    assert _matched(third) == 1


@only_sqlite
async def test_a_damaged_file_is_rebuilt_and_an_upgrade_trusts_none(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    folder = _folder(database_url)
    (tmp_path / "c.csv").write_text(HEADER + "IDX-3,sora.third@example.jp,,,\n", "utf-8")
    run_cli("enroll", str(tmp_path / "c.csv"), env=env, cwd=tmp_path)
    (saved,) = folder.iterdir()
    saved.write_bytes(saved.read_bytes()[:-3])  # not whole prefixes
    damaged = _ingest(env, tmp_path, "a.txt", "sora.third@example.jp:Umi#1\n")
    assert "built from the store" in damaged.stderr and _matched(damaged) == 1
    assert saved.stat().st_size % 8 == 0  # saved again, whole

    run_cli("db", "upgrade", env=env, cwd=tmp_path)
    upgraded = _ingest(env, tmp_path, "b.txt", "sora.third@example.jp:Umi#2\n")
    assert "built from the store" in upgraded.stderr and _matched(upgraded) == 1
    assert not saved.exists()  # replaced by the file of the new generation
