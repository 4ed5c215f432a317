"""The errors a newcomer meets, as a newcomer meets them: each ends in ONE line naming the
setting or the problem, with exit status 2 (configuration) or 1 (an operation that failed),
and never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli import EXPOSURE_SCRIPT, CliResult, run_cli, run_script
from tests.conftest import POSTGRES_URL, TEST_PEPPER, environment, only_postgres


def _one_error_line(result: CliResult) -> str:
    assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == errors[0]  # it is the last word
    return errors[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite:///./x.db", "sqlite:// is a synchronous driver: write sqlite+aiosqlite:///"),
        ("sqlite+pysqlite:///./x.db", "synchronous driver"),
        ("postgresql://exposure:pw@db/exposure", "postgresql:// is not the asyncpg driver"),
        ("postgres://exposure:pw@db/exposure", "write postgresql+asyncpg://"),
        ("mysql://exposure:pw@db/exposure", "must be sqlite+aiosqlite:///"),
    ],
)
@pytest.mark.parametrize("command", [("db", "upgrade"), ("exposures",)])
def test_a_synchronous_or_unknown_driver(
    url: str, says: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    done = run_cli(*command, env=environment(url), cwd=tmp_path, check=False)
    assert done.returncode == 2
    line = _one_error_line(done)
    assert line.startswith("error: EXPOSURE_DATABASE_URL: ") and says in line
    assert "pw" not in line  # the URL's password is never echoed


@only_postgres
def test_a_missing_postgresql_database(backend: str, tmp_path: Path) -> None:
    assert POSTGRES_URL
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/exposure_never_created"
    for command in (("db", "upgrade"), ("exposures",)):
        done = run_cli(*command, env=environment(url), cwd=tmp_path, check=False)
        assert done.returncode == 2
        assert _one_error_line(done) == (
            "error: EXPOSURE_DATABASE_URL: the database named in it does not exist on that "
            "server: create it (createdb) or correct the name"
        )


def test_a_refused_connection(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://exposure@127.0.0.1:9/exposure"  # nothing listens on port 9
    env = environment(url, EXPOSURE_API_LISTEN="127.0.0.1:0")
    for command in (("db", "upgrade"), ("exposures",), ("run",)):
        runner = run_script if command == ("run",) else run_cli  # run: signals, main thread
        done = runner(*command, env=env, cwd=tmp_path, check=False)
        assert done.returncode == 1
        assert _one_error_line(done) == (
            "error: cannot reach the database (ConnectionRefusedError): is it running, and "
            "are the host and port in EXPOSURE_DATABASE_URL right?"
        )


def test_a_missing_sqlite_folder(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'exposure.db'}"
    done = run_cli("db", "upgrade", env=environment(url), cwd=tmp_path, check=False)
    assert done.returncode == 2
    assert _one_error_line(done).startswith(
        "error: EXPOSURE_DATABASE_URL: SQLite cannot open the database file there"
    )


def _in_a_small_filesystem(folder: Path, *command: str, env: dict[str, str]) -> CliResult:
    """Run ``exposure db upgrade`` then ``exposure COMMAND`` in ``folder``, a 2 MiB tmpfs, in a
    mount namespace of its
    own (as root, or as a user mapped to root where user namespaces are allowed), so the disk
    really fills up and nothing is left mounted afterwards."""
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed (Debian: util-linux)"
    namespace = [unshare, "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    script = (
        'mount -t tmpfs -o size=2m tmpfs "$1" && cd "$1" && shift '
        '&& "$1" db upgrade >/dev/null && exec "$@"'  # the schema first, on the small disk
    )
    done = subprocess.run(
        [*namespace, "sh", "-c", script, "sh", str(folder), str(EXPOSURE_SCRIPT), *command],
        env={"PATH": os.environ["PATH"], "HOME": str(folder), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def test_a_full_disk(tmp_path: Path) -> None:
    dump = tmp_path / "big.txt"
    with dump.open("w") as handle:
        for n in range(150_000):  # a few MiB of leaked passwords to stage: more than 2 MiB
            handle.write(f"user{n:06d}@example.org:Password-{n:06d}-{n * 7919 % 100003}\n")
    small = tmp_path / "small"
    small.mkdir()
    env = {"EXPOSURE_PEPPER": TEST_PEPPER}  # the default database, inside the small disk
    done = _in_a_small_filesystem(small, "ingest", str(dump), env=env)
    assert done.returncode == 1, done.stderr
    assert _one_error_line(done) == (
        "error: the disk is full: free some space and run the command again (an ingest "
        "resumes from its last committed batch, nothing is lost)"
    )


@pytest.mark.timeout(120)
def test_pwned_passwords_with_the_feed_unreachable(database_url: str, tmp_path: Path) -> None:
    env = environment(
        database_url,
        EXPOSURE_PWNED_PASSWORDS_URL="http://127.0.0.1:9",
        EXPOSURE_PWNED_PASSWORDS_PREFIXES="ABCDE,12345,FFFFF",
    )
    done = run_cli(
        "connectors", "run", "pwned_passwords", "--once", env=env, cwd=tmp_path, check=False
    )
    assert done.returncode == 1
    line = _one_error_line(done)
    assert line.startswith("error: http://127.0.0.1:9/range/") and "unavailable" in line
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "failed" and summary["error_class"] == "retriable"
    status = json.loads(run_cli("connectors", "status", env=env, cwd=tmp_path).stdout)
    [pwned] = [c for c in status["connectors"] if c["connector"] == "pwned_passwords"]
    failure = pwned["last_failure"]
    assert failure["error_class"] == "retriable" and "unavailable" in failure["error"]
    assert "ExceptionGroup" not in failure["error"]


def test_no_pepper_where_none_may_be_generated(tmp_path: Path) -> None:
    """As in the Docker image: one line, exit 2, and no .env written."""
    env = {"EXPOSURE_GENERATE_PEPPER": "false"}
    for command in (("db", "upgrade"), ("exposures",)):
        done = run_cli(*command, env=env, cwd=tmp_path, check=False)
        assert done.returncode == 2
        assert _one_error_line(done).startswith("error: EXPOSURE_PEPPER: not set, and ")
    assert not (tmp_path / ".env").exists() and not (tmp_path / "exposure.db").exists()
