"""The in-process command runner the other tests rely on (tests/cli.py): the command sees only
the environment and directory it is given, and the test process gets its own back."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from tests.cli import run_cli
from tests.conftest import environment


def test_a_command_runs_in_its_own_environment_and_leaves_ours_alone(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (dict(os.environ), os.getcwd(), list(root.handlers), root.level)
    work = tmp_path / "work"
    work.mkdir()
    # A relative database path and no pepper: both resolve in the command's directory.
    env = environment("sqlite+aiosqlite:///relative.db")
    del env["EXPOSURE_PEPPER"]
    result = run_cli("-v", "db", "upgrade", env=env, cwd=work)
    assert json.loads(result.stdout) == {"upgraded": True, "database": "sqlite"}
    assert "DEBUG" in result.stderr  # its log lines are its own stderr
    assert (work / "relative.db").exists() and "EXPOSURE_PEPPER=" in (work / ".env").read_text()
    assert (dict(os.environ), os.getcwd(), list(root.handlers), root.level) == before

    # Nothing set at all: the default database in that directory, which has no schema yet.
    failed = run_cli("customers", "delete", "C1", env={}, cwd=tmp_path, check=False)
    assert (failed.returncode, failed.stdout) == (2, "")
    assert failed.stderr.splitlines()[-1].startswith("error: the database has no schema")
    assert "Traceback" not in failed.stderr and (tmp_path / ".env").exists()
