"""The enrolled index's sorted prefixes, kept in a file (beside a SQLite database, in the
host's cache for PostgreSQL), so an ingest maps them instead of rebuilding them from every
enrolled fingerprint (0.24 s at a million customers, on every ``exposure ingest`` and every
connector run of the daemon).

The database names the file that is current: ``meta.enrolled_index_generation``, a random
token that every write adding identifiers replaces in its own transaction
(:func:`new_generation`: enrolment, and ``exposure db upgrade`` for whatever a migration did).
The file ``<folder>/<generation>.u64`` holds the prefixes of the identifiers that
generation had, or more:

- the generation is read before the fingerprints it is saved with, so an enrolment committed
  in between adds prefixes to that file, never takes any away;
- a removed identifier (offboarding) leaves its prefix behind, which costs a lookup, never a
  match: every candidate is confirmed against the full fingerprints in the store.

A file that is missing, unreadable or of the wrong size is rebuilt. For PostgreSQL the files are
kept in this host's cache (:func:`folder_of`): every replica keeps its own, and the generation
in the shared database still says which one is current. None is kept for an in-memory SQLite
database (each ingest builds its index from the store).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.store.dialect import beside_sqlite_file, upsert
from exposure.store.models import Meta

if TYPE_CHECKING:  # numpy is imported where an index is loaded, not by every command
    import numpy as np
    import numpy.typing as npt

meta = cast(Table, Meta.__table__)

GENERATION_KEY = "enrolled_index_generation"
SUFFIX = "-index"
_EXTENSION = ".u64"  # raw native-order uint64, sorted and distinct
# A file of another generation that no ingest mapped this long is removed by the next save.
UNUSED_SECONDS = 24 * 3600


async def new_generation(conn: AsyncConnection) -> None:
    """Declare every saved index file stale, in the caller's transaction (the one that adds
    identifiers)."""
    statement = upsert(conn, meta).values(key=GENERATION_KEY, value=secrets.token_hex(16))
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[meta.c.key], set_={"value": statement.excluded.value}
        )
    )


async def generation(conn: AsyncConnection) -> str | None:
    result = await conn.execute(select(meta.c.value).where(meta.c.key == GENERATION_KEY))
    return result.scalar_one_or_none()


def folder_of(bind: AsyncConnection | AsyncEngine) -> Path | None:
    """``<database file>-index/`` beside a SQLite file. For PostgreSQL this host's cache
    (``$XDG_CACHE_HOME``, else ``~/.cache``): ``exposure/enrolled-indexes/``, one folder for
    every database, since a generation is a random token that names one set of identifiers
    wherever it is (a database copied from another has the other's identifiers and
    generation). None for an in-memory or URI-named SQLite database."""
    if bind.sync_engine.url.get_backend_name() != "postgresql":
        return beside_sqlite_file(bind, SUFFIX)
    cache = os.environ.get("XDG_CACHE_HOME")
    if not cache:
        try:
            cache = str(Path.home() / ".cache")
        except RuntimeError:  # no home (a service account): each ingest builds its index
            return None
    return Path(cache, "exposure", "enrolled-indexes")


def _file(folder: Path, generation: str) -> Path:
    # The generation names a file: only what new_generation writes may.
    if not re.fullmatch(r"[0-9a-f]{32}", generation):
        raise ValueError("not an enrolled-index generation")
    return folder / (generation + _EXTENSION)


def load(folder: Path, generation: str) -> npt.NDArray[np.uint64] | None:
    """The prefixes saved for ``generation``, mapped read-only; None when there is no
    usable file."""
    import numpy as np

    try:
        path = _file(folder, generation)
        size = path.stat().st_size
        if size % 8:
            return None
        with contextlib.suppress(OSError):  # in use: kept by every save (see save)
            os.utime(path)
        if size == 0:  # numpy cannot map an empty file
            return np.zeros(0, dtype=np.uint64)
        return np.memmap(path, dtype=np.uint64, mode="r")
    except (OSError, ValueError):
        return None


def save(folder: Path, generation: str, prefixes: npt.NDArray[np.uint64]) -> None:
    """Write the prefixes for ``generation`` (synced, then renamed into place, so a reader
    sees a whole file or none) and remove the files of other generations that no ingest
    mapped for :data:`UNUSED_SECONDS` (in a shared cache they may be other databases'
    current ones). Best effort: an index that cannot be saved is simply rebuilt next time."""
    import numpy as np

    with contextlib.suppress(OSError, ValueError):
        target = _file(folder, generation)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(np.ascontiguousarray(prefixes, dtype=np.uint64).tobytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        unused_since = time.time() - UNUSED_SECONDS
        for stale in folder.iterdir():
            # A process that mapped it keeps its mapping; a .tmp this old is a killed save's.
            with contextlib.suppress(FileNotFoundError):  # removed by a concurrent save
                if stale != target and stale.stat().st_mtime < unused_since:
                    stale.unlink()
