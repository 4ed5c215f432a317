"""7z archives for the container walk (:mod:`exposure.dumps.containers`), apart because py7zr
and what it loads (its ciphers and codecs) take a tenth of a second to import, which only an
input with a 7z archive in it should pay.

py7zr pushes data rather than lets us pull it, and decodes solid blocks only in order: members
are decoded into temporary files first, each under the walk's limits
(:class:`Spill7z`), then read back one by one. Whatever py7zr raises for bad data becomes a
:class:`~exposure.dumps.streams.MemberError` with a stable reason, as for the other formats.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Generator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, cast

import py7zr
import py7zr.exceptions
import py7zr.io

from exposure.dumps.streams import DATA_ERRORS, ArchiveBudget, Budget, MemberError, Stream

# (member name, reason it is skipped or None, its stream or None, its size or None)
Entry = tuple[str, str | None, Stream | None, int | None]
SkipReason = Callable[..., str | None]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, py7zr.exceptions.PasswordRequired):
        return "encrypted"
    if isinstance(exc, py7zr.exceptions.UnsupportedCompressionMethodError):
        return "unsupported"
    return "corrupt"


_ERRORS = (
    py7zr.exceptions.ArchiveError,
    py7zr.exceptions.PasswordRequired,
    py7zr.exceptions.UnsupportedCompressionMethodError,
)


def entries(
    fp: Stream,
    name: str,
    share: ArchiveBudget,
    *,
    on_listing: Callable[[str, list[str]], None],
    skip_reason: SkipReason,
) -> Generator[Entry, None, None]:
    """The members of the 7z archive ``fp`` (sorted by name), as the walk takes them."""
    try:
        size = fp.seek(0, os.SEEK_END)
        fp.seek(0)
        with ExitStack() as stack:
            archive = stack.enter_context(py7zr.SevenZipFile(cast(IO[bytes], fp)))
            spill = Spill7z(share, Path(stack.enter_context(tempfile.TemporaryDirectory())), size)
            encrypted, targets = archive.needs_password(), []
            on_listing(
                name + "!", [str(item.filename) for item in archive.files if not item.is_directory]
            )
            for item in sorted(archive.files, key=lambda item: str(item.filename)):
                link, regular = item.is_symlink or item.is_junction, not item.is_socket
                skip = skip_reason(item.filename, link=link, regular=regular, encrypted=encrypted)
                if item.is_directory:
                    continue
                if skip is not None:
                    yield item.filename, skip, None, None
                else:
                    targets.append(item.filename)
            failure: BaseException | None = None
            if targets:
                try:
                    archive.extract(targets=targets, factory=spill)
                except (*DATA_ERRORS, *_ERRORS) as exc:
                    failure = exc
                finally:
                    for writer in spill.writers:
                        writer.file.close()
            for member, (path, member_size) in sorted(spill.done.items()):
                with path.open("rb") as raw:
                    yield member, None, Stream(raw, f"{name}!{member}", "unreadable"), member_size
                path.unlink()
            if failure is not None:
                raise failure
    except _ERRORS as exc:
        raise MemberError(name, _reason(exc)) from exc


class _SpillWriter(py7zr.io.Py7zIO):
    """One 7z member, pushed by py7zr into a temporary file under the walk's limits."""

    def __init__(self, spill: Spill7z, name: str, path: Path) -> None:
        self._spill, self._name, self._path, self._size = spill, name, path, 0
        self.file = path.open("wb")

    def write(self, s: bytes | bytearray) -> int:
        spill = self._spill
        self._size += len(s)
        spill.written += len(s)
        # Solid blocks have no per-member compressed size: the ratio is the whole archive's.
        spill.budget.charge(self._name, len(s), self._size, spill.written, spill.archive_bytes)
        return self.file.write(s)

    def read(self, size: int | None = None) -> bytes:
        raise io.UnsupportedOperation("write only")

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def flush(self) -> None:
        self.file.flush()

    def size(self) -> int:
        return self._size

    def close(self) -> None:
        self.file.close()  # py7zr calls close() only once a member passed its CRC check
        self._spill.done[self._name] = (self._path, self._size)


class Spill7z(py7zr.io.WriterFactory):
    """Where ``archive.extract(factory=...)`` writes: one temporary file per member, in
    ``folder``; ``done`` maps each member that passed its CRC check to its file and size."""

    def __init__(self, budget: Budget, folder: Path, archive_bytes: int) -> None:
        self.budget, self.folder, self.archive_bytes = budget, folder, archive_bytes
        self.written = 0
        self.writers: list[_SpillWriter] = []
        self.done: dict[str, tuple[Path, int]] = {}

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        # Named by a counter: a name from the archive never becomes a path.
        self.writers.append(_SpillWriter(self, filename, self.folder / str(len(self.writers))))
        return self.writers[-1]
