"""The wheel carries the migrations, so an installed package can create its schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)  # pip builds the wheel, C extension included
def test_wheel_ships_migrations_and_upgrades_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("exposure-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "exposure/migrations/env.py" in names
    assert any(n.startswith("exposure/migrations/versions/0001_") for n in names)
    assert "connectors/__init__.py" in names
    # Every package of the source tree is listed in pyproject.toml (the list is explicit
    # because of the migrations mapping, so a new package is easy to forget).
    for init in [*ROOT.glob("exposure/**/__init__.py"), *ROOT.glob("connectors/**/__init__.py")]:
        assert str(init.relative_to(ROOT)) in names, f"{init.parent.name} missing from the wheel"
    assert not any(n.startswith(("migrations/", "tests/")) for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        # The installed wheel first; dependencies from the test environment after it.
        "PYTHONPATH": os.pathsep.join(
            [str(target), *[p for p in sys.path if "site-packages" in p]]
        ),
        "EXPOSURE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'x.db'}",
        "EXPOSURE_PEPPER": "cd" * 32,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import exposure, sys; sys.argv[0] = 'exposure'; "
            "print(exposure.__file__, file=sys.stderr); from exposure.cli import main; main()",
            "db",
            "upgrade",
        ],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stderr  # the wheel's copy ran, not the checkout's
    assert json.loads(result.stdout)["upgraded"] is True
