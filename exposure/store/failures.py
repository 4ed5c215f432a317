"""Database and disk failures in our terms, for a command to end with one line that names the
setting or the problem (``exposure`` exits 2 for configuration, 1 for an operation that
failed) instead of a driver's traceback."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import DBAPIError

from exposure.errors import ConfigurationError, ExposureError, RetriableError
from exposure.store.reconnect import DatabaseUnavailable, describe, is_transient

# SQLSTATEs that mean the URL is wrong: no such database, no such role, a wrong password.
_WRONG_URL = {
    "3D000": "the database named in it does not exist on that server: create it (createdb) or "
    "correct the name",
    "28P01": "the server refused the password for that user",
    "28000": "the server refused that user (check the user and pg_hba.conf)",
}


class DiskFull(ExposureError):
    """No space left where the database or a file is written."""

    def __init__(self) -> None:
        super().__init__(
            "the disk is full: free some space and run the command again (an ingest resumes "
            "from its last committed batch, nothing is lost)"
        )


def explain(error: BaseException) -> ExposureError | None:
    """The error as one of ours, with a message for the operator, or ``None`` when it is not
    a database or disk failure (then it is a bug, and its traceback is wanted)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return DiskFull()
    if isinstance(error, DBAPIError):
        orig = error.orig
        text = str(orig).lower()
        full = getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        if full or "database or disk is full" in text:
            return DiskFull()
        if "unable to open database file" in text:
            return ConfigurationError(
                "EXPOSURE_DATABASE_URL",
                "SQLite cannot open the database file there (does its folder exist, and may "
                "this user write to it?)",
            )
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code in _WRONG_URL:
            return ConfigurationError("EXPOSURE_DATABASE_URL", _WRONG_URL[code])
    if isinstance(error, DatabaseUnavailable):
        return error
    if is_transient(error):
        return CannotReachDatabase(error)
    return None


class CannotReachDatabase(RetriableError):
    """The database did not answer (refused, reset, timed out)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(
            f"cannot reach the database ({describe(error)}): is it running, and are the host "
            "and port in EXPOSURE_DATABASE_URL right?"
        )
