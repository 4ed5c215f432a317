"""The process's worker threads, owned by whoever runs the process (the daemon, a command).

Two thread pools serve the ingest: the native matching threads, one per core
(:func:`exposure.ingest.evaluator.matchers`), and the thread that splits blocks of lines for the
fast path (:func:`exposure.dumps.fastpath.splitter`). Neither exists at import: each starts
with the first ingest that needs it. :func:`worker_threads` is the owner's scope; as it closes,
whatever was started is shut down (an ingest after that starts fresh threads).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def worker_threads() -> Iterator[None]:
    """Shut down the ingest's worker threads when the scope ends."""
    try:
        yield
    finally:
        shutdown_worker_threads()


def shutdown_worker_threads() -> None:
    """Stop the threads that were started. A module not loaded started none, and importing
    it here would cost a command that never ingests the pipeline's load time."""
    if "exposure.ingest.evaluator" in sys.modules:
        from exposure.ingest.evaluator import shutdown_matchers

        shutdown_matchers()
    if "exposure.dumps.fastpath" in sys.modules:
        from exposure.dumps.fastpath import shutdown_splitter

        shutdown_splitter()
