"""The ingest's worker threads are started on first use and owned by the runtime's scope."""

from __future__ import annotations

import subprocess
import sys

from exposure.dumps import fastpath
from exposure.ingest import evaluator
from exposure.runtime.threads import worker_threads


def test_importing_the_pipeline_starts_no_thread() -> None:
    code = (
        "import threading, exposure.ingest.pipeline, exposure.dumps.fastpath;"
        "print(threading.active_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "1"


def test_the_scope_shuts_down_what_was_started_and_a_later_use_starts_afresh() -> None:
    with worker_threads():
        matchers, splitter = evaluator.matchers(), fastpath.splitter()
        assert evaluator.matchers() is matchers and fastpath.splitter() is splitter
        assert matchers.submit(sum, (1, 2)).result() == 3
        assert splitter.submit(len, "abc").result() == 3
    assert matchers._shutdown and splitter._shutdown  # type: ignore[attr-defined]
    fresh = evaluator.matchers()
    assert fresh is not matchers and fresh.submit(int, "7").result() == 7
    evaluator.shutdown_matchers()
