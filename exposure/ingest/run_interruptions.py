"""What ends or interrupts a connector run, in our terms (:mod:`exposure.ingest.connector_runner`):
the database session holding its lock ending, a lost database connection, a connector's group
of errors (docs/decisions/database-reconnect.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

from exposure.errors import ExposureError, RetriableError
from exposure.store.reconnect import DatabaseUnavailable, is_transient


class RunLockLost(RetriableError):
    """The database session holding the run's lock ended (a restart, a failover): another
    replica may run the connector now, so this run stops; the next resumes from its cursor."""

    def __init__(self) -> None:
        super().__init__(
            "the database connection holding this run's lock was lost; the run stopped after "
            "its last stored page and the next run resumes from there"
        )


async def unless_lost(work: Coroutine[Any, Any, None], lost: asyncio.Event) -> None:
    """Run ``work``; if ``lost`` is set first, cancel it and raise :class:`RunLockLost`."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(lost.wait())
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})  # its clean-up (in-flight batches rolled back) runs first
        raise
    finally:
        watcher.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    raise RunLockLost()


def in_our_terms(error: BaseException) -> ExposureError | None:
    """What ``error`` is in our terms, if anything: one of ours; a lost database connection
    (retriable); a group of errors (a connector's task group) whose members are all ours,
    as its first member."""
    if isinstance(error, ExposureError):
        return error
    if is_transient(error):
        return DatabaseUnavailable("storing a page", error)
    if isinstance(error, BaseExceptionGroup):
        found = [in_our_terms(leaf) for leaf in _leaves(error)]
        if found and all(found):
            retriable = [e for e in found if isinstance(e, RetriableError)]
            return (
                retriable[0]
                if len(retriable) == len(found)
                else next(e for e in found if not isinstance(e, RetriableError))
            )
    return None


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error
