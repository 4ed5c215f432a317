"""``exposure exposures``: the table in 120 columns with a state column, ``--state``, ``show``,
and resolving or dismissing from the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.cli.render import TABLE_COLUMNS, fit
from exposure.store.models import Exposure
from tests.cli import run_cli
from tests.conftest import environment
from tests.console import scenario

LONG_SITE = "login.really-long-subdomain.mirai-sec.co.jp"


def test_cells_are_fitted_with_an_ellipsis() -> None:
    assert fit("force_reset", 11) == "force_reset"
    assert fit("notify", 11) == "notify     "
    assert fit(LONG_SITE, 16) == "login.really-lo…"
    assert fit("tab\there\nline", 16) == "tab here line   "
    assert sum(width for *_, width in TABLE_COLUMNS) + len(TABLE_COLUMNS) - 1 == 120


async def test_table_state_filter_show_and_resolve(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    await scenario.seed(engine)
    async with engine.begin() as conn:
        await conn.execute(
            update(Exposure)
            .where(Exposure.exposure_id == scenario.exposure_id("due"))
            .values(site_domain=LONG_SITE)
        )
    env = environment(database_url, USER="tanaka")
    table = run_cli("exposures", env=env, cwd=tmp_path).stdout.splitlines()
    assert table[0].split()[:2] == ["exposure", "customer"] and "state" in table[0]
    assert all(len(line) <= 120 for line in table)
    due = next(line for line in table if "C-1002" in line)
    assert "login.really-lo…" in due and LONG_SITE not in due
    states = {line.split()[1]: line for line in table[1:]}
    assert " reset_completed " in states["C-1006"] and " open " in states["C-1001"]

    dismissed = run_cli("exposures", "--state", "dismissed", env=env, cwd=tmp_path)
    assert [line.split()[1] for line in dismissed.stdout.splitlines()[1:]] == ["C-1005"]
    as_json = run_cli("exposures", "--state", "open", "--format", "jsonl", env=env, cwd=tmp_path)
    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert len(rows) == 5 + scenario.BULK and {r["state"] for r in rows} == {"open"}

    overdue = scenario.exposure_id("overdue")
    shown = run_cli("exposures", "show", overdue[:8], env=env, cwd=tmp_path).stdout
    assert overdue in shown and "combo-2025-05.txt:1042" in shown and "x2" in shown
    assert "msg_overdue_0  exposure.force_reset  dead" in shown and "#3 " in shown
    detail = json.loads(
        run_cli("exposures", "show", overdue, "--format", "json", env=env, cwd=tmp_path).stdout
    )
    assert detail["sighting_places"] == 2 and len(detail["events"][0]["attempts"]) == 3
    assert "ta***@example.jp" in shown and detail["identifier_hint"] == "ta***@example.jp"

    resolved = run_cli("exposures", "resolve", overdue[:8], env=env, cwd=tmp_path)
    assert json.loads(resolved.stdout) == {
        "exposure_id": overdue,
        "resolution": "reset_completed",
        "recorded": True,
    }
    same = run_cli("exposures", "resolve", overdue, env=env, cwd=tmp_path)
    assert json.loads(same.stdout)["recorded"] is False and "nothing changed" in same.stderr
    other = run_cli(
        "exposures", "dismiss", overdue, "--reason", "x", env=env, cwd=tmp_path, check=False
    )
    assert other.returncode == 1 and "already resolved as reset_completed" in other.stderr
    no_reason = run_cli("exposures", "dismiss", overdue, env=env, cwd=tmp_path, check=False)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    blank = run_cli(
        "exposures", "dismiss", scenario.exposure_id("notify"), "--reason", "  ",
        env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert blank.returncode == 2 and "say why" in blank.stderr
    unknown = run_cli("exposures", "show", "ffffffff", env=env, cwd=tmp_path, check=False)
    assert unknown.returncode == 2 and "no exposure has this id" in unknown.stderr
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(Exposure.state, Exposure.resolved_by).where(Exposure.exposure_id == overdue)
            )
        ).one()
    assert tuple(row) == ("reset_completed", "cli:tanaka")
