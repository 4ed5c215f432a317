"""`exposure demo`, and the deployment files a broker runs in production."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from exposure.runtime.healthcheck import readiness_url
from exposure.settings import parse_listen
from tests.cli import run_cli, run_script

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_the_whole_flow(tmp_path: Path) -> None:
    result = run_cli("demo", env={}, cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert summary["exposures"]["force_reset"] >= 3 and summary["exposures"]["notify"] >= 1
    webhooks = summary["webhooks"]
    assert webhooks and all(hook["verified"] for hook in webhooks)
    assert summary["delivery"]["delivered"] == len(webhooks)
    assert {hook["body"]["type"] for hook in webhooks} <= {
        "exposure.force_reset",
        "exposure.notify",
    }
    assert "Exposures found" in result.stderr
    assert not list(tmp_path.iterdir())  # throw-away: nothing left behind
    for hook in webhooks:  # invented identifiers never reach a webhook
        assert "@" not in json.dumps(hook["body"])


def test_compose_has_postgres_a_one_shot_migration_and_the_daemon() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "exposure"}
    assert services["migrate"]["command"] == ["exposure", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    daemon = services["exposure"]
    assert daemon["command"] == ["exposure", "run"]
    assert daemon["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert daemon["env_file"] == ".env"
    assert daemon["environment"]["EXPOSURE_DATABASE_URL"].startswith("postgresql+asyncpg://")
    dockerfile = (ROOT / "Dockerfile").read_text()
    for needed in (
        "COPY migrations",
        "COPY connectors",
        "pip wheel --no-deps --wheel-dir /wheels .",
        "pip install /wheels/*.whl",
        "libssl-dev",  # the native fast path compiles against OpenSSL
        'CMD ["exposure", "run"]',
    ):
        assert needed in dockerfile
    assert "USER exposure" in dockerfile  # not root


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_published_port_reaches_the_api_after_copying_the_example() -> None:
    """`cp .env.example .env` brings EXPOSURE_API_LISTEN=127.0.0.1:8080, which inside a
    container no published port reaches: compose's own `environment` (which wins over
    `env_file`) makes the API listen on every interface, on the port it publishes."""
    example = dotenv_values(ROOT / ".env.example")
    assert example["EXPOSURE_API_LISTEN"] == "127.0.0.1:8080"
    daemon = _compose()["services"]["exposure"]
    assert daemon["env_file"] == ".env"
    host, port = parse_listen(daemon["environment"]["EXPOSURE_API_LISTEN"])
    assert host == "0.0.0.0"  # noqa: S104  (inside the container: every interface)
    [published] = daemon["ports"]
    host_ip, _, container_port = published.split(":")
    assert (host_ip, int(container_port)) == ("127.0.0.1", port)
    # The container's environment as compose builds it: .env, then `environment` on top.
    seen = {k: v for k, v in example.items() if v is not None} | daemon["environment"]
    assert readiness_url(seen) == f"http://127.0.0.1:{port}/readyz"


def test_the_health_check_follows_the_listen_setting() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [healthcheck] = re.findall(r"HEALTHCHECK[^\n]*\n\s*CMD ([^\n]+)", dockerfile)
    assert healthcheck == '["python", "-m", "exposure.runtime.healthcheck"]'
    assert not re.search(r":\d+/readyz", dockerfile)  # no port written into it
    for listen, url in (
        ("0.0.0.0:9000", "http://127.0.0.1:9000/readyz"),
        ("[::]:8443", "http://[::1]:8443/readyz"),
        ("10.0.0.5:8080", "http://10.0.0.5:8080/readyz"),
    ):
        assert readiness_url({"EXPOSURE_API_LISTEN": listen}) == url


def test_the_pepper_is_required_and_never_generated_in_a_container() -> None:
    services = _compose()["services"]
    for name in ("migrate", "exposure"):
        environment = services[name]["environment"]
        # Compose refuses to start without it, before any container exists.
        assert environment["EXPOSURE_PEPPER"].startswith("${EXPOSURE_PEPPER:?")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "EXPOSURE_GENERATE_PEPPER=false" in dockerfile


def test_the_database_password_stays_out_of_the_url() -> None:
    """A password with @, / or % would break a URL it was pasted into: it travels as
    PGPASSWORD, which asyncpg reads when the URL has none."""
    for name in ("migrate", "exposure"):
        environment = _compose()["services"][name]["environment"]
        url = make_url(environment["EXPOSURE_DATABASE_URL"])
        assert url.drivername == "postgresql+asyncpg" and url.password is None
        assert environment["PGPASSWORD"] == "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"


def test_the_mounted_folders_are_the_host_users() -> None:
    compose = _compose()
    daemon = compose["services"]["exposure"]
    mounts = {volume["target"]: volume for volume in daemon["volumes"]}
    environment = daemon["environment"]
    assert set(mounts) == {environment["EXPOSURE_FOLDER_PATH"], environment["EXPOSURE_REPORT_DIR"]}
    for volume in mounts.values():
        # Long syntax: Docker does not create a missing folder (it would be root's).
        assert volume["type"] == "bind" and not volume.get("bind", {}).get("create_host_path")
        assert volume["source"] in ("./inbox", "./reports")
    assert daemon["user"] == "${HOST_UID:-1000}:${HOST_GID:-1000}"
    example = (ROOT / ".env.example").read_text()
    assert "\nHOST_UID=" in example and "\nHOST_GID=" in example
    assert "mkdir -p inbox reports" in (ROOT / "README.md").read_text()


def test_docker_stops_the_daemon_only_after_its_own_grace_period() -> None:
    daemon = _compose()["services"]["exposure"]
    grace = float(daemon["environment"]["EXPOSURE_STOP_GRACE_SECONDS"])
    assert daemon["stop_grace_period"].endswith("s")
    assert float(daemon["stop_grace_period"][:-1]) > grace


def _start_tree(tmp_path: Path) -> Path:
    """A checkout as ./scripts/start sees it, with a bootstrap that only records that it ran
    (and installs a stand-in `exposure` that records its commands): what is under test is
    whether start installs, not pip."""
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    (root / "exposure" / "dumps").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "start", root / "scripts" / "start")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(ROOT / "exposure" / "dumps" / "_fastscan.c", root / "exposure" / "dumps")
    bootstrap = root / "scripts" / "bootstrap"
    bootstrap.write_text(
        "#!/bin/sh\n"
        'echo installed >> "$(dirname "$0")/../installs"\n'
        'echo "a setuptools warning nobody needs to see"\n'
        'mkdir -p "$(dirname "$0")/../.venv/bin"\n'
        'printf \'#!/bin/sh\\necho "$@" >> "%s/commands"\\n\' "$(cd "$(dirname "$0")/.." && pwd)"'
        ' > "$(dirname "$0")/../.venv/bin/exposure"\n'
        'chmod +x "$(dirname "$0")/../.venv/bin/exposure"\n'
        '[ -z "$FAIL_INSTALL" ] || { echo "no index reachable" >&2; exit 1; }\n'
    )
    bootstrap.chmod(0o755)
    return root


def _start(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts" / "start")],
        cwd=root,
        env={"PATH": os.environ["PATH"], "HOME": str(root), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_installs_only_when_the_project_changed(tmp_path: Path) -> None:
    root = _start_tree(tmp_path)
    first = _start(root)
    assert first.returncode == 0, first.stderr
    assert (root / "installs").read_text().count("installed") == 1
    assert "setuptools" not in first.stdout + first.stderr  # the installer's chatter is kept aside
    again = _start(root)  # a restart: no install, no package index needed
    assert again.returncode == 0 and "setting up" not in again.stderr
    assert (root / "installs").read_text().count("installed") == 1
    assert (root / "commands").read_text().splitlines() == ["db upgrade", "run"] * 2
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "\n# changed\n")
    _start(root)
    assert (root / "installs").read_text().count("installed") == 2
    (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text() + "# again\n")
    failed = _start(root, FAIL_INSTALL="1")
    assert failed.returncode == 1
    assert "no index reachable" in failed.stderr
    assert failed.stderr.rstrip().splitlines()[-1].startswith("error: installing exposure failed")


def test_the_first_runs_pepper_warning_is_the_last_thing_said(tmp_path: Path) -> None:
    done = run_script("db", "upgrade", env={}, cwd=tmp_path)
    assert "WARNING: no EXPOSURE_PEPPER was set" in done.stderr
    assert "alembic" not in done.stderr and "INFO" not in done.stderr
    assert done.stderr.rstrip().endswith("=" * 70)
