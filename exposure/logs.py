"""Logging set-up: structured JSON lines for the daemon, plain text for people at a terminal.

Log calls pass counts, ids and fingerprint prefixes as arguments, never identifiers or
passwords; the JSON formatter adds the fields of ``extra={...}`` as top-level keys.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else came from ``extra=`` and is emitted as a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(*, json_lines: bool, verbose: bool = False) -> None:
    """Route every logger to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Third-party chatter that would otherwise drown the daemon's own lines (Alembic's INFO
    # lines would bury the first run's pepper warning).
    for noisy in ("aiohttp.access", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for driver in NEVER_VERBOSE:
        logging.getLogger(driver).setLevel(logging.WARNING)


# Loggers that print bound parameters or result rows below WARNING (aiosqlite logs every call
# with its arguments at DEBUG; SQLAlchemy logs rows at DEBUG): held at WARNING at every level,
# since those values are enrolled password hashes and token hashes.
NEVER_VERBOSE = ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool", "sqlalchemy.orm")
