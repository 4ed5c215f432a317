"""``exposure cases``: the table, the state/action/since filters, the jsonl and csv formats,
``show`` by id prefix, and the errors a mistyped id gets."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import iso_utc
from tests.cli import run_cli
from tests.conftest import environment
from tests.console import scenario


async def test_list_filters_and_formats(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    now = await scenario.seed(engine)
    await scenario.add_joined_exposure(engine, now)
    env = environment(database_url)
    table = run_cli("cases", env=env, cwd=tmp_path)
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["case", "customer", "action"]
    assert all(len(line) <= 120 for line in lines)
    by_customer = {line.split()[1]: line.split() for line in lines[1:]}
    # Open cases only by default: one row per customer, the joined exposure counted in C-1001's.
    assert set(by_customer) == {"C-1001", "C-1002", "C-1003", "C-1004", "C-1007"} | {
        f"C-2{n:03d}" for n in range(scenario.BULK)
    }
    assert by_customer["C-1001"][:6] == [
        scenario.case_id("C-1001")[:8],
        "C-1001",
        "force_reset",
        "critical",
        "2",
        "open",
    ]
    assert table.stderr.strip().endswith(f"{5 + scenario.BULK} case(s)")

    resolved = run_cli("cases", "--state", "resolved", "--format", "jsonl", env=env, cwd=tmp_path)
    rows = [json.loads(line) for line in resolved.stdout.splitlines()]
    assert {(r["customer_id"], r["resolution"]) for r in rows} == {
        ("C-1005", "dismissed"),
        ("C-1006", "reset_completed"),
    }
    assert all(r["state"] == "resolved" and r["exposure_count"] == 1 for r in rows)

    since = iso_utc(now - timedelta(hours=12))
    recent = run_cli(
        "cases", "--state", "all", "--action", "force_reset", "--since", since,
        "--format", "csv", env=env, cwd=tmp_path,
    )  # fmt: skip
    found = list(csv.DictReader(io.StringIO(recent.stdout)))
    assert [r["customer_id"] for r in found] == ["C-1002"]
    assert found[0]["case_id"] == scenario.case_id("C-1002")

    naive = run_cli("cases", "--since", "2025-05-12T09:00:00", env=env, cwd=tmp_path, check=False)
    assert naive.returncode == 2 and "UTC offset" in naive.stderr


async def test_show_by_prefix(database_url: str, engine: AsyncEngine, tmp_path: Path) -> None:
    now = await scenario.seed(engine)
    joined = await scenario.add_joined_exposure(engine, now)
    env = environment(database_url)
    case_id = scenario.case_id("C-1001")
    shown = json.loads(run_cli("cases", "show", case_id[:8], env=env, cwd=tmp_path).stdout)
    assert shown["case_id"] == case_id and shown["exposure_count"] == 2
    assert [(e["exposure_id"], e["sightings"]) for e in shown["exposures"]] == [
        (scenario.exposure_id("overdue"), 3),
        (joined, 0),
    ]
    assert [(e["event_id"], e["state"]) for e in shown["events"]] == [
        (scenario.event_id("overdue"), "dead")
    ]
    assert shown["force_reset_at"] == iso_utc(now - timedelta(hours=30))

    missing = run_cli("cases", "show", "ffffffff", env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "no case has this id" in missing.stderr
    short = run_cli("cases", "show", "abc", env=env, cwd=tmp_path, check=False)
    assert short.returncode == 2 and "first 8 characters" in short.stderr


async def test_resolve_records_once_with_an_audit_entry(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    now = await scenario.seed(engine)
    joined = await scenario.add_joined_exposure(engine, now)
    env = environment(database_url, USER="tanaka")
    case_id = scenario.case_id("C-1001")
    no_reason = run_cli(
        "cases", "resolve", case_id[:8], "--resolution", "dismissed",
        env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert no_reason.returncode == 2 and "reason" in no_reason.stderr
    done = run_cli(
        "cases", "resolve", case_id[:8], "--resolution", "reset_completed", "--reason",
        "customer called in", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert json.loads(done.stdout) == {
        "case_id": case_id,
        "resolution": "reset_completed",
        "recorded": True,
    }
    again = run_cli(
        "cases", "resolve", case_id, "--resolution", "reset_completed", env=env, cwd=tmp_path
    )
    assert json.loads(again.stdout)["recorded"] is False and "nothing changed" in again.stderr
    other = run_cli(
        "cases", "resolve", case_id, "--resolution", "dismissed", "--reason", "x",
        env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert other.returncode == 1 and "reset_completed" in other.stderr

    shown = json.loads(run_cli("cases", "show", case_id, env=env, cwd=tmp_path).stdout)
    assert (shown["state"], shown["resolved_by"]) == ("resolved", "cli:tanaka")
    assert {e["exposure_id"]: e["state"] for e in shown["exposures"]} == {
        scenario.exposure_id("overdue"): "reset_completed",
        joined: "reset_completed",
    }
    audit = run_cli("audit", "--action", "case.resolved", env=env, cwd=tmp_path).stdout
    [entry] = [json.loads(line) for line in audit.splitlines()]
    assert (entry["target"], entry["channel"], entry["actor"]) == (case_id, "cli", "tanaka")
    assert entry["detail"]["reason"] == "customer called in"
