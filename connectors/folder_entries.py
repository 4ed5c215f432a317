"""What the drop folder will open: regular files and folders, nothing else.

Anyone who can write to the inbox decides what its entries are, so an entry is looked at
with ``lstat`` (never following a link) before anything opens it:

* a symbolic link is refused, wherever it points: followed, it would read a file outside the
  inbox (``/etc/shadow``) into the leaked-password corpus, or a device without end
  (``/dev/zero``);
* a FIFO, a socket or a device is refused: opening a FIFO blocks until a writer comes, for
  ever if none does;
* a regular file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open
  descriptor, so an entry swapped for a link or a FIFO after the ``lstat`` is refused too;
* in a folder, every regular file is checked the same way; links and special files inside
  are left to the reader, which refuses each as a member problem (``symlink``,
  ``special_file``) and reads the rest.

A refused entry goes to ``failed/`` with its reason (:func:`problem`'s text).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Signature = tuple[int, int, int]  # (files, bytes, newest mtime in ns)

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an entry is not ingested: a reason code (counted in the run summary) and a line
    for ``<name>.reason.txt``. Neither quotes the entry's content."""

    code: str
    text: str


SYMLINK = Problem(
    "symlink", "a symbolic link: links are never followed; drop the file or folder itself"
)


def _special(mode: int) -> Problem | None:
    for test, kind in _KINDS:
        if test(mode):
            return Problem(
                "special_file",
                f"a {kind}, not a regular file or folder: only files and folders are ingested",
            )
    return None


def problem(entry: Path) -> Problem | None:
    """Why the inbox entry ``entry`` must not be ingested, or ``None``: it is a regular file,
    or a folder whose regular files can all be opened. Never blocks, never follows a link."""
    try:
        mode = os.lstat(entry).st_mode
        if stat.S_ISLNK(mode):
            return SYMLINK
        if stat.S_ISDIR(mode):
            for path in _regular_files(entry):
                _check_opens(path)
            return None
        return _special(mode) or _check_opens(entry)
    except OSError as error:
        return Problem("unreadable", f"unreadable ({type(error).__name__})")


def _check_opens(path: Path) -> Problem | None:
    """Open without following a link or waiting for a writer; what the descriptor is."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == getattr(os, "ELOOP", None) or os.path.islink(path):
            return SYMLINK  # became a link after the lstat
        raise
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    return None if stat.S_ISREG(mode) else _special(mode) or SYMLINK


def _regular_files(folder: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield path


def signature(entry: Path) -> Signature:
    """What must stay the same between two looks for the entry to count as settled: for a
    file its size and mtime, for a folder its files' count, total size and newest mtime.
    Links are not followed (a dangling one inside a folder is the reader's to refuse)."""
    status = os.lstat(entry)
    if not stat.S_ISDIR(status.st_mode):
        return (1, status.st_size, status.st_mtime_ns)
    files = size = 0
    newest = status.st_mtime_ns
    for root, dirs, names in os.walk(entry, followlinks=False):
        for name in (*dirs, *names):
            inner = os.lstat(os.path.join(root, name))
            newest = max(newest, inner.st_mtime_ns)
            if stat.S_ISREG(inner.st_mode):
                files, size = files + 1, size + inner.st_size
    return (files, size, newest)
