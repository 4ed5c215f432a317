"""Lost database connections: told apart from real errors once, and retried the same way
everywhere (docs/decisions/database-reconnect.md).

A database that restarts, fails over or drops an idle connection breaks whatever statement
was running on it. SQLAlchemy invalidates that connection and ``pool_pre_ping`` replaces the
pool's stale ones, so the next transaction gets a fresh connection; what is left is to tell
such an interruption (:func:`is_transient`) from an error that a retry cannot cure, and to
retry the interrupted unit of work from its last commit (:func:`retrying`). Every code path
that writes (ingest batches, chunks, deliveries, connector runs, the API, the report) goes
through one of the two.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from exposure.clock import full_jitter
from exposure.errors import RetriableError

log = logging.getLogger("exposure.store.reconnect")
T = TypeVar("T")

# SQLSTATEs a retry cures: class 08 (connection exception) and these. 57P01-57P03: the server
# is shutting down, crashed or still starting (a restart, a failover); 53300: too many
# connections; 40001/40P01: a serialization failure or deadlock (the transaction is redone);
# 25006: a read-only transaction, what the old primary answers just after a failover.
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01", "25006"})
# Socket errors of a database host that is restarting, moving or briefly unreachable.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
    }
)
# SQLite: another process holds the write lock beyond busy_timeout.
_SQLITE_BUSY = ("database is locked", "database table is locked")


class DatabaseUnavailable(RetriableError):
    """The database could not be reached, or kept dropping the connection, for longer than
    the caller was willing to wait; the work is safe to run again (it resumes)."""

    def __init__(self, what: str, cause: BaseException) -> None:
        self.what = what
        self.cause = describe(cause)
        super().__init__(
            f"{what}: the database is unavailable ({self.cause}); the work resumes from its "
            "last commit when it runs again"
        )


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is a lost or refused database connection, or another failure that
    the same work, retried on a fresh connection, gets past."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        code = _sqlstate(error)
        if code is not None and (code.startswith("08") or code in TRANSIENT_SQLSTATES):
            return True
        if isinstance(error, OperationalError):
            text = str(error.orig).lower()
            return any(busy in text for busy in _SQLITE_BUSY)
        return False
    if isinstance(error, PoolTimeout | TimeoutError):
        return True
    if isinstance(error, OSError):
        return error.errno in TRANSIENT_ERRNOS or isinstance(error, ConnectionError)
    return False


def describe(error: BaseException) -> str:
    """A short name for what went wrong: the driver's error class and SQLSTATE, never the
    message (a statement's text stays out of logs and summaries)."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig.__cause__ or error.orig
    code = _sqlstate(error)
    name = type(cause).__name__
    return f"{name} {code}" if code else name


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to keep retrying: full-jitter delays from ``base`` doubling up to ``cap``,
    for at most ``patience`` seconds of consecutive failures (``None``: until stopped)."""

    base: float = 0.5
    cap: float = 15.0
    patience: float | None = 300.0

    def delay(self, failures: int) -> float:
        return full_jitter(failures, base=self.base, cap=self.cap)


DEFAULT_BACKOFF = Backoff()


async def retrying(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: asyncio.Event | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
) -> T:
    """Run ``operation`` (a whole unit of work: its own transaction, or a run that resumes
    from its last commit) until it succeeds; retry it after a transient error, with backoff.

    Any other error is raised as it is. Once ``backoff.patience`` is spent, or ``stop`` is
    set, the last transient error is raised as :class:`DatabaseUnavailable`.
    """
    failures = 0
    first_failure = 0.0
    while True:
        try:
            return await operation()
        except Exception as error:
            if not is_transient(error):
                raise
            now = time.monotonic()
            failures += 1
            if failures == 1:
                first_failure = now
            patience = backoff.patience
            if (stop is not None and stop.is_set()) or (
                patience is not None and now - first_failure >= patience
            ):
                raise DatabaseUnavailable(what, error) from error
            delay = backoff.delay(failures)
            log.warning(
                "%s: database connection lost (%s); retrying in %.1f s (attempt %d)",
                what,
                describe(error),
                delay,
                failures + 1,
            )
            await pause(stop, delay)


async def pause(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
