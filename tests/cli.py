"""Running the ``exposure`` command in tests.

:func:`run_cli` runs it inside the test process (a thread, a captured environment and working
directory, captured streams): what almost every test needs, at a fraction of a child process's
start-up. :func:`run_script` runs the installed console script in a child process, for the tests
where the process boundary is the point: signals, the real script's exit statuses and streams,
several processes at once.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from click.testing import CliRunner

EXPOSURE_SCRIPT = Path(sys.executable).with_name("exposure")


class CliResult(NamedTuple):
    """What a run of the ``exposure`` command left: its exit status and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def _check(args: tuple[str, ...], result: CliResult, check: bool) -> CliResult:
    if check and result.returncode != 0:
        raise AssertionError(
            f"exposure {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\n"
            f"stderr: {result.stderr}"
        )
    return result


def _process_env(env: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """What the command sees: PATH and HOME from here, everything else from the test."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(cwd)), **env}


def run_script(
    *args: str, env: Mapping[str, str], cwd: Path, check: bool = True, timeout: float = 300
) -> CliResult:
    """Run the installed ``exposure`` console script in a child process, as a user would.

    For the tests where the process boundary is the point (exit statuses of the real script,
    signals, several processes at once); everything else uses :func:`run_cli`."""
    result = subprocess.run(
        [str(EXPOSURE_SCRIPT), *args],
        env=_process_env(env, cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return _check(args, CliResult(result.returncode, result.stdout, result.stderr), check)


_IN_PROCESS = threading.Lock()


def run_cli(*args: str, env: Mapping[str, str], cwd: Path, check: bool = True) -> CliResult:
    """Run ``exposure ARGS`` inside this process, as the console script would run it.

    The command sees exactly ``env`` (plus PATH and HOME) as its environment and ``cwd`` as its
    working directory, and runs on a thread of its own (commands call ``asyncio.run``; the
    test's event loop is busy on this one). Its stdout, stderr (log lines included) and exit
    status come back as the script's would; an uncaught exception becomes a traceback on
    stderr and status 1. The environment, the working directory, the logging set-up and the
    collector's frozen objects are put back afterwards.
    """
    if not _IN_PROCESS.acquire(blocking=False):
        raise AssertionError("in-process commands share os.environ: run them one at a time")
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="exposure-cli") as pool:
            result = pool.submit(_invoke, args, _process_env(env, cwd), cwd).result()
    finally:
        _IN_PROCESS.release()
    return _check(args, result, check)


def _invoke(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> CliResult:
    from exposure.cli import main

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_levels = {logger.name: logger.level for logger in _loggers()}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        outcome = CliRunner().invoke(main, list(args), prog_name="exposure")
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for logger in _loggers():  # configure_logging quietens a few libraries' loggers
            logger.setLevel(saved_levels.get(logger.name, logging.NOTSET))
        gc.unfreeze()  # `run` freezes what is loaded, for a process that then exits
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "".join(traceback.format_exception(outcome.exception))
    return CliResult(outcome.exit_code, outcome.stdout, stderr)


def _loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
