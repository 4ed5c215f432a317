"""Enrolment files as brokers' spreadsheets save them: an extra column is ignored with a note,
a Shift_JIS (CP932) file is named as such before anything is enrolled, and a customer id that
a spreadsheet would run as a formula comes out of every CSV neutralised."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli import run_cli
from tests.conftest import environment
from tests.leakgen import CURRENT, HASHER


def test_an_extra_column_is_ignored_with_a_note(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "customer_id,氏名,email,password_hash\n"
        f"C1,山田 太郎,taro.extra@example.jp,{HASHER.hash(CURRENT)}\n",
        encoding="utf-8",
    )
    done = run_cli("enroll", str(path), env=environment(database_url), cwd=tmp_path)
    summary = json.loads(done.stdout)
    assert summary["customers"] == 1 and summary["rejected"] == 0
    assert "column(s) 氏名 ignored" in done.stderr and "山田" not in done.stderr


def test_a_cp932_file_is_named_as_such(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,email\nC1,山田.taro@example.jp\n".encode("cp932"))
    env = environment(database_url)
    done = run_cli("enroll", str(path), env=env, cwd=tmp_path, check=False)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith("error: customers.csv is not UTF-8 text (it reads as Shift_JIS (CP932)")
    assert "iconv -f CP932 -t UTF-8" in line and "header" not in line
    listed = run_cli("exposures", "--format", "jsonl", env=env, cwd=tmp_path)
    assert listed.stdout == ""  # nothing was enrolled, nothing half-done


def test_a_formula_in_a_customer_id_is_neutralised_in_csv(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    (tmp_path / "customers.csv").write_text(
        "customer_id,email,password_hash\n"
        f"=1+1,formula.id@example.jp,{HASHER.hash(CURRENT)}\n"
        f" =1+1,formula.two@example.jp,{HASHER.hash(CURRENT)}\n"
        f"\t=1+1,formula.three@example.jp,{HASHER.hash(CURRENT)}\n"
    )
    enrolled = json.loads(
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path).stdout
    )
    assert enrolled["customers"] == 1 and enrolled["rejected"] == 2  # never merged silently
    assert [r["reason"] for r in enrolled["rejected_rows"]] == [
        "customer_id: whitespace at the start or end (ids are taken exactly as written)"
    ] * 2
    (tmp_path / "leak.txt").write_text(f"formula.id@example.jp:{CURRENT}\n")
    run_cli("ingest", str(tmp_path / "leak.txt"), env=env, cwd=tmp_path)
    out = run_cli("exposures", "--format", "csv", env=env, cwd=tmp_path).stdout
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["customer_id"] == "'=1+1"


def test_enroll_and_enrol_both_work(database_url: str, tmp_path: Path) -> None:
    """The command is spelt enroll and the token scope enrol; each takes the other spelling."""
    env = environment(database_url)
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email\nC1,spelling.one@example.jp\n")
    for command in ("enroll", "enrol"):
        done = run_cli(command, str(path), env=env, cwd=tmp_path)
        assert json.loads(done.stdout)["customers"] == 1
    for spelling in ("enrol", "enroll"):
        created = run_cli(
            "tokens", "create", f"t-{spelling}", "--scope", spelling, env=env, cwd=tmp_path
        )
        assert json.loads(created.stdout)["scopes"] == ["enrol"]
