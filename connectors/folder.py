"""The drop folder: every file or folder put in the inbox is ingested once, then moved.

* **Ready means stable.** Names starting with ``.`` or ``~$`` and names ending in ``.part``,
  ``.tmp``, ``.partial``, ``.crdownload`` or ``.download`` are never picked up: write under
  such a name and rename when done (an atomic rename is the reliable way). An entry the
  daemon's watcher saw arrive that way is taken at once (:mod:`connectors.folder_watch`). As
  a safety net for writers that cannot, any other entry is taken only if its size and
  modification time (for a folder: its files' count, total size and newest mtime) are the
  same at two looks ``EXPOSURE_FOLDER_SETTLE_SECONDS`` apart; anything still changing waits
  for the next run.
* **Watched, and polled.** The daemon runs this connector as soon as its watcher sees the
  inbox change (:meth:`FolderConnector.watch`), and on its schedule as the fallback for
  network file systems that send no change events.
* **Folders count.** A top-level folder (an unpacked stealer-log tree) is one input.
* **Files and folders only.** A symbolic link, a FIFO, a socket or a device is never opened or
  followed: it goes to ``failed/`` with its reason (:mod:`connectors.folder_entries`), and the
  rest of the inbox is ingested as usual. Such entries, and entries nothing could be read
  from, are counted in the run's summary (``failed_<reason>``), so a manual run exits 1.
* **Changed while read.** An entry whose size or modification time changed during its ingest
  stays in the inbox and is ingested again once it settles (what was read already only adds
  sightings).
* **Move after commit.** After the ingest committed, the entry moves to ``processed/``; if
  nothing could be read from it at all (corrupt archive, unknown format, unreadable), it moves
  to ``failed/`` with ``<name>.reason.txt`` beside it holding reason codes only. A crash
  between the commit and the move ingests the entry again on the next run: identical content
  resumes or only adds sightings, never a second exposure or webhook.
* **Large dumps are chunked.** A plain file (not an archive or compressed: judged by its magic
  bytes) over ``EXPOSURE_FOLDER_CHUNK_BYTES`` is yielded as a
  :class:`~connectors.base.LargeFilePage` naming ``processed/`` as its done folder. The runner
  registers its line-aligned byte ranges in the database (this module never writes there) and every
  daemon replica's ``chunks`` job ingests them (see :mod:`exposure.ingest.large_files`); the file
  stays in the inbox meanwhile and whoever finishes its last chunk moves it to ``processed/``. A
  manual ``exposure connectors run folder`` works through the chunks itself before it returns. A
  file the runner will not chunk (UTF-16, CSV, SQL, stealer logs, no format found) is ingested
  whole, as before.
* **No cursor.** Moving the files is the state.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors import folder_entries, folder_watch
from connectors.base import (
    Connector,
    ConnectorSettings,
    Cursor,
    FilesPage,
    LargeFilePage,
    Page,
    Stored,
    move_into,
    parse_positive_float,
    parse_positive_int,
    setting,
)
from exposure.dumps.reader import is_container

log = logging.getLogger("exposure.connectors.folder")

PROCESSED = "processed"
FAILED = "failed"
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".download")

Signature = folder_entries.Signature


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderSettings(ConnectorSettings):
    path: Path = setting(
        "EXPOSURE_FOLDER_PATH",
        help="the inbox folder dumps are dropped into",
        default=Path("inbox"),
        parse=Path,
    )
    settle_seconds: float = setting(
        "EXPOSURE_FOLDER_SETTLE_SECONDS",
        help="an entry must stay unchanged this long before it is ingested",
        default=5.0,
        parse=parse_positive_float,
    )
    chunk_bytes: int = setting(
        "EXPOSURE_FOLDER_CHUNK_BYTES",
        help="a plain-text dump larger than this is split into byte ranges the replicas share",
        default=64 << 20,
        parse=parse_positive_int,
    )


class FolderConnector(Connector[FolderSettings]):
    """Ingests what is dropped into ``EXPOSURE_FOLDER_PATH`` (default ``./inbox``)."""

    name = "folder"
    settings_type = FolderSettings
    default_schedule = "every 1m"
    description = "drop folder: files and folders put in the inbox are ingested once, then moved"

    @classmethod
    def watch(cls, settings: Any, stop: asyncio.Event) -> AsyncIterator[None] | None:
        """The inbox's changes as they happen (:func:`connectors.folder_watch.watch`)."""
        inbox = Path(settings.path)
        _prepare(inbox)  # at start-up: the watch needs the folder
        return folder_watch.watch(
            inbox,
            stop,
            ignored=_ignored,
            suffixes=IGNORED_SUFFIXES,
            signature=folder_entries.signature,
        )

    async def pages(self, cursor: Cursor) -> AsyncGenerator[Page, Stored | None]:
        inbox = self.settings.path
        await asyncio.to_thread(_prepare, inbox)
        first = await asyncio.to_thread(_snapshot, inbox)
        if not first:
            return
        looked = time.monotonic()
        arrivals = folder_watch.arrivals(inbox)
        failed: Counter[str] = Counter()
        # Entries renamed in complete go at once, with no settle wait (also those arriving
        # while the others settle); the others are looked at again once the settle time has
        # passed since the first look (the ingests meanwhile count towards it).
        settling = dict(first)
        while True:
            # Marked before the look: an arrival recorded while the look runs in its thread
            # may be missing from it, and must wake the settle wait below, not sleep in it.
            mark = arrivals.mark()
            seen = await asyncio.to_thread(_snapshot, inbox)
            ready = sorted(arrivals.take(seen))
            for path in ready:
                settling.pop(path, None)
            if not ready:
                if not settling:
                    break
                remaining = self.settings.settle_seconds - (time.monotonic() - looked)
                if remaining > 0:
                    await arrivals.wait(remaining, since=mark)
                    continue
                ready, seen = await asyncio.to_thread(_settled, inbox, settling)
                settling = {}
                if not ready:
                    break
            for path in ready:
                # Regular files and folders only; links and special files are never opened.
                problem = await asyncio.to_thread(folder_entries.problem, path)
                if problem is not None:
                    await asyncio.to_thread(_move_failed, inbox, path, problem.text)
                    failed[problem.code] += 1
                    continue
                chunk_bytes = self.settings.chunk_bytes
                if await asyncio.to_thread(_is_large_plain_file, path, chunk_bytes):
                    stored = yield LargeFilePage(
                        files=(path,),
                        cursor=None,
                        chunk_bytes=chunk_bytes,
                        done_folder=inbox / PROCESSED,
                    )
                else:
                    stored = yield FilesPage(files=(path,), cursor=None)
                # Past the yield: the ingest and its run record have committed.
                if _chunks_pending(stored):
                    continue  # the chunk workers move it when its last chunk is done
                if await asyncio.to_thread(_changed, path, seen[path]):
                    # Written to while it was read: what was added may not have been. Left
                    # where it is, it is ingested again once it settles (the lines read
                    # already only add sightings).
                    log.warning(
                        "folder: %s changed while it was ingested; left in the inbox to be "
                        "ingested again once it stops changing",
                        path.name,
                    )
                    continue
                reason = _failure(stored)
                if reason is None:
                    await asyncio.to_thread(move_into, path, inbox / PROCESSED)
                else:
                    await asyncio.to_thread(_move_failed, inbox, path, reason)
                    failed["no_records"] += 1
        if failed:
            # Counted in the run's summary (the entries are in failed/ with their reasons),
            # so a manual run says so and exits non-zero.
            yield Page(cursor=None, skipped={f"failed_{code}": n for code, n in failed.items()})


def _settled(inbox: Path, first: dict[Path, Signature]) -> tuple[list[Path], dict[Path, Signature]]:
    """The entries of ``first`` unchanged at this second look, and that look."""
    second = _snapshot(inbox)
    ready = sorted(path for path, sig in second.items() if first.get(path) == sig)
    waiting = len(second) - len(ready)
    if waiting:
        log.info("folder: %d entr(ies) still changing, left for the next run", waiting)
    return ready, second


def _prepare(inbox: Path) -> None:
    inbox.mkdir(exist_ok=True)
    (inbox / PROCESSED).mkdir(exist_ok=True)
    (inbox / FAILED).mkdir(exist_ok=True)


def _ignored(name: str) -> bool:
    return (
        name in (PROCESSED, FAILED)
        or name.startswith((".", "~$"))
        or name.lower().endswith(IGNORED_SUFFIXES)
    )


def _snapshot(inbox: Path) -> dict[Path, Signature]:
    found: dict[Path, Signature] = {}
    for entry in inbox.iterdir():
        if _ignored(entry.name):
            continue
        try:
            found[entry] = folder_entries.signature(entry)
        except OSError:
            continue  # vanished or unreadable while we looked: the next run sees it again
    return found


def _changed(entry: Path, before: Signature) -> bool:
    """Whether the entry is no longer what was picked up (appended to, rewritten)."""
    try:
        return folder_entries.signature(entry) != before
    except OSError:
        return False  # gone: moved by a chunk worker, or by its writer; nothing to redo


def _is_large_plain_file(entry: Path, chunk_bytes: int) -> bool:
    """A regular file over ``chunk_bytes`` whose first bytes are no container's magic."""
    try:
        status = entry.lstat()
        if not stat.S_ISREG(status.st_mode) or status.st_size <= chunk_bytes:
            return False
        with entry.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False  # gone (a chunk worker just finished and moved it): the ingest says so
    return not is_container(head, entry.name)


def _chunks_pending(stored: Stored | None) -> bool:
    return stored is not None and bool(stored.ingests) and not stored.ingests[0].complete


def _failure(stored: Stored | None) -> str | None:
    """Why nothing could be read from the entry, or None when it was ingested."""
    if stored is None or not stored.ingests:
        return None
    outcome = stored.ingests[0]
    if outcome.records > 0 or not outcome.problems_total:
        return None
    reasons = outcome.problem_reasons
    listed = ", ".join(f"{reason} x{count}" for reason, count in sorted(reasons.items()))
    return f"no records could be read; problems: {listed}"


def _move_failed(inbox: Path, entry: Path, reason: str) -> None:
    target = move_into(entry, inbox / FAILED)
    if target is None:
        return
    when = datetime.now(UTC).isoformat(timespec="seconds")
    # Reason codes and counts only: never a line, a login or a password from the entry.
    target.with_name(target.name + ".reason.txt").write_text(
        f"{reason}\nmoved at {when}\n", encoding="utf-8"
    )
    log.warning("folder: %s moved to %s/: %s", entry.name, FAILED, reason)
