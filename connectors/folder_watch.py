"""The drop folder's watcher: the inbox's changes as they happen, and which entries arrived
complete (docs/decisions/folder-watcher.md).

:func:`watch` follows the inbox with ``watchfiles`` (inotify on Linux, FSEvents on macOS, ...)
and yields whenever an entry appears or changes, so the daemon runs the folder connector
within a second of a drop; the connector's schedule stays as the fallback for file systems
that send no events (NFS, SMB), and for a watcher that failed.

An entry renamed into the inbox from a name the connector never picks up (``.dump.txt.part``
-> ``dump.txt``: a dotfile, ``.part``, ``.tmp``, ...) was complete when it appeared, which is
what the README asks writers to do: the watcher sees the old name go and the new one come in
the same moment, records the new entry's signature (:func:`arrivals`), and the connector takes
it without the settle wait while its signature is unchanged (a run waiting for other entries
to settle is woken to take it at once). Anything else (written in place,
moved in from another folder, or an ambiguous rename) waits for the settle check as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import suppress
from pathlib import Path

import watchfiles

from connectors.folder_entries import Signature

log = logging.getLogger("exposure.connectors.folder")


# A rename's two halves arrive together; a half seen this long ago may still pair.
PAIRING_SECONDS = 2.0
# Events of one moment are gathered for this long (ms) before the watcher reports them.
DEBOUNCE_MS = 50

# An arrival nobody took (the entry went away first) is forgotten after this long.
FORGET_SECONDS = 3600.0


class Arrivals:
    """The entries of one inbox that arrived complete (by name), with their signature then:
    the watcher records them, the connector takes them. A connector run waiting for other
    entries to settle is woken by an arrival recorded since its last look (:meth:`wait`)."""

    def __init__(self) -> None:
        self._recorded: dict[str, tuple[Signature, float]] = {}
        self._count = 0  # arrivals recorded so far: what a run's look is measured against
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def record(self, name: str, signature: Signature) -> None:
        now = time.monotonic()
        self._recorded = {
            n: seen for n, seen in self._recorded.items() if now - seen[1] < FORGET_SECONDS
        }
        self._recorded[name] = (signature, now)
        self._count += 1
        self._changed().set()

    def mark(self) -> int:
        """Where the arrivals stand: taken just before a look at the inbox, and handed to
        :meth:`wait` after it."""
        return self._count

    def take(self, snapshot: dict[Path, Signature]) -> set[Path]:
        """The entries of ``snapshot`` that arrived complete and have not changed since (an
        arrival that changed since is forgotten: it waits for the settle check)."""
        ready = set()
        for path, signature in snapshot.items():
            recorded = self._recorded.pop(path.name, None)
            if recorded is not None and recorded[0] == signature:
                ready.add(path)
        return ready

    async def wait(self, seconds: float, since: int) -> None:
        """Until an entry arrives after :meth:`mark` returned ``since``, or ``seconds`` have
        passed. One recorded while the run was looking at the inbox (after the mark, so
        perhaps missing from what the run saw) returns at once, so the run looks again."""
        if self._count != since:
            return
        event = self._changed()
        event.clear()  # nothing else runs between the check above and this clear
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def _changed(self) -> asyncio.Event:
        # One event per event loop (tests run several loops in one process).
        loop = asyncio.get_running_loop()
        if self._event is None or self._loop is not loop:
            self._event, self._loop = asyncio.Event(), loop
        return self._event


_arrivals: dict[Path, Arrivals] = {}


def arrivals(inbox: Path) -> Arrivals:
    """The arrivals of ``inbox`` (one registry per folder, in this process)."""
    return _arrivals.setdefault(inbox.resolve(), Arrivals())


def stem(name: str, suffixes: Iterable[str]) -> str:
    """The name an ignored name is the staging form of: ``.dump.txt.part`` -> ``dump.txt``."""
    while True:
        before = name
        for prefix in (".", "~$"):
            name = name.removeprefix(prefix)
        for suffix in suffixes:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        if name == before:
            return name


def renamed_in(added: Collection[str], staged: list[str], suffixes: Iterable[str]) -> list[str]:
    """Which ``added`` entries arrived by rename from the ``staged`` (ignored) names seen
    going: by name first (``.x.part`` -> ``x``); the rest only when there are no more of them
    than staged names left (otherwise an entry written in place could pass for one). Paired
    staged names are removed from ``staged``."""
    suffixes = tuple(suffixes)
    paired = []
    for name in sorted(added):
        for candidate in staged:
            if stem(candidate, suffixes) == name:
                staged.remove(candidate)
                paired.append(name)
                break
    left = sorted(set(added) - set(paired))
    if left and len(left) <= len(staged):
        del staged[: len(left)]
        paired.extend(left)
    return paired


async def watch(
    inbox: Path,
    stop: asyncio.Event,
    *,
    ignored: Callable[[str], bool],
    suffixes: Iterable[str],
    signature: Callable[[Path], Signature],
) -> AsyncIterator[None]:
    """Yield whenever an entry of ``inbox`` appears or changes, until ``stop``; record the
    ones that arrived complete. Ends (with a warning; the schedule goes on) if the folder
    cannot be watched."""
    recorded = arrivals(inbox)
    staged: list[tuple[str, float]] = []  # ignored names seen going, and when
    # The watch is set up in the same step as this line is logged (before the first wait).
    log.info("folder: watching the inbox for new entries (the schedule polls as well)")
    try:
        async for changes in watchfiles.awatch(
            inbox,
            stop_event=stop,
            watch_filter=None,  # every event: staging names going away are what pairs a rename
            recursive=False,
            debounce=DEBOUNCE_MS,
            step=DEBOUNCE_MS // 2,
        ):
            now = time.monotonic()
            seen = [(change, Path(path).name) for change, path in changes]
            staged = [(name, at) for name, at in staged if now - at < PAIRING_SECONDS]
            staged += [(name, now) for change, name in seen if change is _GONE and ignored(name)]
            modified = {name for change, name in seen if change is _CHANGED}
            added = {
                name
                for change, name in seen
                if change is _CAME and not ignored(name) and name not in modified
            }
            names = [name for name, _ in staged]
            for name in renamed_in(added, names, suffixes):
                try:
                    recorded.record(name, await asyncio.to_thread(signature, inbox / name))
                except OSError:
                    continue  # gone already: the connector's snapshot will not see it either
            staged = _unpaired(staged, names)
            if any(change is not _GONE and not ignored(name) for change, name in seen):
                yield
    except OSError as error:  # e.g. no inotify watches left: the schedule still polls
        log.warning(
            "folder: cannot watch the inbox (%s); it is polled on its schedule only",
            type(error).__name__,
        )


_CAME, _CHANGED, _GONE = (
    watchfiles.Change.added,
    watchfiles.Change.modified,
    watchfiles.Change.deleted,
)


def _unpaired(staged: list[tuple[str, float]], left: list[str]) -> list[tuple[str, float]]:
    """The staged names still in ``left`` (as many of each as are left), with their times."""
    count = Counter(left)
    kept = []
    for name, at in staged:
        if count[name] > 0:
            count[name] -= 1
            kept.append((name, at))
    return kept
