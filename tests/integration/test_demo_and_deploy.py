"""`exposure demo`, and the deployment files a broker runs in production."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli import run_cli

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
