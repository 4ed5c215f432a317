"""Walk a file, folder or archive into readable members, streaming and defensively.

Folders (sorted), zip, 7z, tar, gz, bz2, xz and zst, tar inside any of those compressors, and
archives nested in archives up to :attr:`ArchiveLimits.max_depth`. The type comes from magic
bytes; an extension only matters when the bytes contradict it. Nothing is ever extracted to a
path taken from an archive: zip and 7z need random access, so a nested one is spilled to an
anonymous temporary file (7z: one per member), bounded by the limits and deleted after use.

Limits are enforced on the bytes actually produced, never on sizes that headers claim. What goes
wrong with one member or archive becomes a :class:`MemberProblem` (or, while a member is being
read, a :class:`MemberError`) with a stable reason, and the walk goes on: ``encrypted``,
``corrupt``, ``truncated``, ``unsupported`` (a method or format such as RAR), ``bomb_ratio``,
``too_large`` (one member), ``total_too_large`` (the walk's budget; the rest is skipped),
``too_many_members``, ``too_deep``, ``path_traversal`` (``..`` or absolute), ``symlink``
(symbolic or hard link: never followed), ``special_file`` (device, FIFO), ``unreadable`` (OS).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, BinaryIO, Self, cast

import py7zr
import py7zr.exceptions
import py7zr.io
import zstandard

from exposure.errors import SkippableError

__all__ = ["ArchiveLimits", "Member", "MemberError", "MemberProblem", "iter_members"]

_HEAD_BYTES = 512  # tar's "ustar" magic sits at offset 257
_COPY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLimits:
    """Limits against decompression bombs and oversized input, all counted while streaming.

    ``max_ratio``: output / input bytes of one decompression step, checked past
    ``ratio_grace_bytes`` (small repetitive files are legitimate). Deflate tops out near 1032:1
    and text rarely passes 20:1, so 200 stops a zero-filled bomb long before it matters.
    ``max_member_bytes``: one decompressed stream or spilled archive. ``max_total_bytes``:
    everything decompressed in one walk. ``max_depth``: layers of archives and compression
    (``a.zip!b.tar.gz!c.txt`` has three: zip, gz, tar). ``max_members``: entries of one archive.
    """

    max_ratio: float = 200.0
    ratio_grace_bytes: int = 16 << 20
    max_member_bytes: int = 8 << 30
    max_total_bytes: int = 64 << 30
    max_depth: int = 4
    max_members: int = 1_000_000


class MemberError(SkippableError):
    """Reading a member failed or hit a limit: skip it and report ``reason``."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


@dataclass(frozen=True, slots=True)
class Member:
    """A readable file: ``name`` such as ``dump.zip!JP[ABC] [2025-04-01]/Passwords.txt``, and
    ``size`` as a header claims it, if any. ``open()`` works once, before the walk moves on;
    the walk owns the stream. Reading it may raise :class:`MemberError`."""

    name: str
    size: int | None
    open: Callable[[], AbstractContextManager[BinaryIO]] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class MemberProblem:
    """A member or container that could not be (fully) read, and the reason code."""

    name: str
    reason: str


Item = Member | MemberProblem
# (entry name, reason it is skipped, or its open stream, claimed size)
_Entry = tuple[str, str | None, "_Stream | None", int | None]
_Entries = Generator[_Entry, None, None]

# Whatever library raises them, these mean "this data is bad" (for OSError, see _Stream).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, py7zr.exceptions.ArchiveError)
_CODEC_ERRORS = (zlib.error, lzma.LZMAError, zstandard.ZstdError, EOFError, OSError)
_OTHER_ERRORS = (MemberError, py7zr.exceptions.PasswordRequired, NotImplementedError)
_DATA_ERRORS = (*_OTHER_ERRORS, *_ARCHIVE_ERRORS, *_CODEC_ERRORS)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MemberError):
        return exc.reason
    # tarfile tells a stream that ends inside a member only by this message.
    if isinstance(exc, EOFError) or str(exc).startswith("unexpected end of data"):
        return "truncated"
    if isinstance(exc, py7zr.exceptions.PasswordRequired):
        return "encrypted"
    if isinstance(exc, NotImplementedError | py7zr.exceptions.UnsupportedCompressionMethodError):
        return "unsupported"
    return "corrupt"


class _Stream(io.BufferedIOBase):
    """Read-through wrapper: replays a peeked head, counts bytes, turns library errors into
    :class:`MemberError` (a bare ``OSError`` means ``failure``). With a ``guard`` (walk,
    compressed source, its count at the start) it charges what it reads to the walk's limits."""

    def __init__(
        self,
        inner: IO[bytes],
        name: str,
        failure: str = "corrupt",
        guard: tuple[_Walk, _Stream, int] | None = None,
    ) -> None:
        super().__init__()
        self._inner, self.name, self._failure, self._guard = inner, name, failure, guard
        # From a decoder, read1 hands over what one step produced: read() would raise EOFError
        # at a cut and lose the whole buffered request. Files (failure "unreadable") get exact
        # reads: zipfile and py7zr take a short header read for a damaged archive.
        read1 = None if failure == "unreadable" else getattr(inner, "read1", None)
        self._read: Callable[[int], bytes] = read1 or inner.read
        self.count = self._head_pos = 0
        self._head: bytes | None = None
        self._error: MemberError | None = None

    def peek_head(self) -> bytes:
        """The first bytes (up to 512); reads replay them."""
        if self._head is None:
            parts: list[bytes] = []
            have = 0
            while have < _HEAD_BYTES and (data := self._pull(_HEAD_BYTES - have)):
                parts.append(data)
                have += len(data)
            self._head = b"".join(parts)
        return self._head

    def seek(self, offset: int, whence: int = 0, /) -> int:
        self._head, self._head_pos = b"", 0  # the replay serves sequential reads only
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell() - len(self._head or b"") + self._head_pos

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(partial(self.read, _COPY_BYTES), b""))
        head = self._head
        if head and self._head_pos < len(head):
            data = head[self._head_pos : self._head_pos + size]
            self._head_pos += len(data)
            return data
        return self._pull(size)

    read1 = read

    def _pull(self, size: int) -> bytes:
        if self._error is not None:
            raise self._error  # once a limit trips, nothing after it is trusted
        try:
            data = self._read(size)
            self.count += len(data)
            if self._guard is not None and data:
                walk, source, base = self._guard
                walk.charge(self.name, len(data), self.count, self.count, source.count - base)
        except MemberError as exc:
            self._error = exc
            raise
        except _DATA_ERRORS as exc:
            reason = self._failure if type(exc) is OSError else _reason(exc)
            self._error = MemberError(self.name, reason)
            raise self._error from exc
        return data


class _ZstdReader(io.RawIOBase):
    """Multi-frame zstd that reports truncation (``stream_reader`` silently hides it).

    ``decompressobj`` has no output bound, so it gets 512 input bytes at a time: a zstd block
    expands at most ~32,000:1, which caps one call near 16 MiB even for a bomb.
    """

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source, self._dctx = source, zstandard.ZstdDecompressor()
        self._obj, self._in_frame = self._dctx.decompressobj(), False
        self._pending, self._leftover, self._out = memoryview(b""), b"", memoryview(b"")

    def read(self, size: int | None = -1, /) -> bytes:
        while not self._out:
            if self._leftover:
                piece, self._leftover = self._leftover, b""
            else:
                if not self._pending:
                    self._pending = memoryview(self._source.read(64 << 10))
                    if not self._pending:
                        if self._in_frame:
                            raise EOFError("zstd stream ends inside a frame")
                        return b""
                piece, self._pending = bytes(self._pending[:512]), self._pending[512:]
            self._out, self._in_frame = memoryview(self._obj.decompress(piece)), True
            if self._obj.eof:  # the frame is complete; what follows starts the next one
                self._leftover, self._in_frame = self._obj.unused_data, False
                self._obj = self._dctx.decompressobj()
        cut = len(self._out) if size is None or size < 0 else size
        data, self._out = self._out[:cut].tobytes(), self._out[cut:]  # views: no O(n^2) copying
        return data


_DECOMPRESSORS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gz": lambda f: cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb")),
    "bz2": lambda f: cast(IO[bytes], bz2.BZ2File(f)),
    "xz": lambda f: cast(IO[bytes], lzma.LZMAFile(f)),
    "zst": lambda f: cast(IO[bytes], _ZstdReader(f)),
}
_COMPRESSED_SUFFIX = re.compile(r"\.(gz|gzip|bz2|xz|lzma|zst|zstd)$", re.IGNORECASE)
_TAR_SHORTHAND = re.compile(r"\.t(gz|bz2?|xz|zst)$", re.IGNORECASE)
_ARCHIVE_SUFFIX = re.compile(r"\.(zip|7z|gz|tgz|bz2|tbz2?|xz|txz|zstd?|tzst|rar)$", re.IGNORECASE)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # empty zip
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\x1f\x8b", "gz"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zst"),
    (b"Rar!\x1a\x07", "unsupported"),
)


def _sniff(head: bytes, name: str) -> str | None:
    """Container type from magic bytes; ``None`` for a plain member."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    # "BZh" + level + block or end-of-stream magic: "BZh9" alone could start a text line.
    if head[:3] == b"BZh" and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bz2"
    if head[257:262] == b"ustar" or name.lower().endswith(".tar"):
        return "tar"  # a pre-POSIX tar has no magic: tarfile's header checksums decide
    return "corrupt" if _ARCHIVE_SUFFIX.search(name) else None  # an archive's name, not its bytes


def _skip_reason(
    name: str, *, link: bool = False, regular: bool = True, encrypted: bool = False
) -> str | None:
    """Why an archive entry is not read (if it is not): escape attempts first."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"[A-Za-z]:", path) or ".." in path.split("/"):
        return "path_traversal"
    return (
        "symlink" if link else "special_file" if not regular else "encrypted" if encrypted else None
    )


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry name, re-decoded when the archiver did not flag UTF-8: zipfile then reads it as
    cp437, but Japanese archivers wrote cp932 (some UTF-8 unflagged), and the name feeds format
    detection."""
    name = info.filename
    if not info.flag_bits & 0x800 and not name.isascii():
        raw = name.encode("cp437")
        for encoding in ("utf-8", "cp932"):
            try:
                return raw.decode(encoding).replace("\\", "/")
            except UnicodeDecodeError:
                continue
    return name.replace("\\", "/")


def _checked_tarinfo(end: list[str]) -> type[tarfile.TarInfo]:
    class _CheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tar: tarfile.TarFile) -> Self:
            try:
                return super().fromtarfile(tar)
            except tarfile.HeaderError as exc:
                # After the first member TarFile.next() ends *quietly* on a missing or broken
                # header; only an all-zero block is a real end. (Not in the typed API: by name.)
                kind = type(exc).__name__
                if kind != "EOFHeaderError":
                    cut = kind in ("TruncatedHeaderError", "EmptyHeaderError")
                    end.append("truncated" if cut else "corrupt")
                raise

    return _CheckedTarInfo


class _SpillWriter(py7zr.io.Py7zIO):
    """One 7z member, pushed by py7zr into a temporary file under the walk's limits."""

    def __init__(self, spill: _Spill7z, name: str, path: Path) -> None:
        self._spill, self._name, self._path, self._size = spill, name, path, 0
        self.file = path.open("wb")

    def write(self, s: bytes | bytearray) -> int:
        spill = self._spill
        self._size += len(s)
        spill.written += len(s)
        # Solid blocks have no per-member compressed size: the ratio is the whole archive's.
        spill.walk.charge(self._name, len(s), self._size, spill.written, spill.archive_bytes)
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


class _Spill7z(py7zr.io.WriterFactory):
    def __init__(self, walk: _Walk, folder: Path, archive_bytes: int) -> None:
        self.walk, self.folder, self.archive_bytes, self.written = walk, folder, archive_bytes, 0
        self.writers: list[_SpillWriter] = []
        self.done: dict[str, tuple[Path, int]] = {}

    def create(self, filename: str) -> py7zr.io.Py7zIO:
        # Named by a counter: a name from the archive never becomes a path.
        self.writers.append(_SpillWriter(self, filename, self.folder / str(len(self.writers))))
        return self.writers[-1]


class _Walk:
    """One walk: the limits, and the byte budget shared by every container in it."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits, self.used, self.exhausted = limits, 0, False

    def charge(self, name: str, added: int, size: int, produced: int, compressed: int) -> None:
        """Charge ``added`` decompressed bytes: ``size`` so far for this member, ``produced``
        so far from ``compressed`` input bytes for the ratio."""
        limits = self.limits
        self.used += added
        if self.used > limits.max_total_bytes:
            self.exhausted = True
            raise MemberError(name, "total_too_large")
        if size > limits.max_member_bytes:
            raise MemberError(name, "too_large")
        if produced > limits.ratio_grace_bytes and produced > limits.max_ratio * max(compressed, 1):
            raise MemberError(name, "bomb_ratio")

    def folder(self, folder: Path, prefix: str) -> Iterator[Item]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            yield MemberProblem(prefix.rstrip("/") or folder.name, "unreadable")
            return
        for entry in entries:
            name = prefix + entry.name
            if entry.is_symlink():  # never followed: links loop or point outside the input
                yield MemberProblem(name, "symlink")
            elif entry.is_dir(follow_symlinks=False):
                yield from self.folder(Path(entry.path), name + "/")
            elif entry.is_file(follow_symlinks=False):
                yield from self.file(Path(entry.path), name)
            else:
                yield MemberProblem(name, "special_file")
            if self.exhausted:
                return

    def file(self, path: Path, name: str) -> Iterator[Item]:
        try:
            raw = path.open("rb")
        except OSError:
            yield MemberProblem(name, "unreadable")
            return
        with raw:
            size = os.fstat(raw.fileno()).st_size
            yield from self.node(_Stream(raw, name, "unreadable"), name, 0, size, on_disk=True)

    def node(
        self, stream: _Stream, name: str, depth: int, size: int | None, on_disk: bool = False
    ) -> Iterator[Item]:
        try:
            kind = _sniff(stream.peek_head(), name)
        except MemberError as exc:
            yield MemberProblem(name, exc.reason)
            return
        if kind is None:
            handed: list[_Stream] = [stream]

            def open_once() -> AbstractContextManager[BinaryIO]:
                if not handed:
                    raise RuntimeError("a member can be opened once, before the walk moves on")
                return nullcontext(cast(BinaryIO, handed.pop()))

            try:
                yield Member(name, size, open_once)
            finally:
                handed.clear()  # the walk moves on: the stream is about to be closed
        elif kind in ("corrupt", "unsupported"):
            yield MemberProblem(name, kind)
        elif depth >= self.limits.max_depth:
            yield MemberProblem(name, "too_deep")
        elif kind == "tar":
            yield from self._container(name, self._tar_entries(stream, name), depth + 1)
        elif kind in _DECOMPRESSORS:
            yield from self._decompressed(kind, stream, name, depth + 1)
        else:
            yield from self._random_access(kind, stream, name, depth + 1, on_disk)

    def _container(self, name: str, entries: _Entries, depth: int) -> Iterator[Item]:
        """Walk one archive's entries; an error of the archive itself ends it as a problem."""
        with closing(entries):
            try:
                for index, (member, skip, stream, size) in enumerate(entries):
                    if index >= self.limits.max_members:
                        yield MemberProblem(name, "too_many_members")
                        return
                    if stream is None:
                        yield MemberProblem(f"{name}!{member}", skip or "corrupt")
                    else:
                        yield from self.node(stream, f"{name}!{member}", depth, size)
                    if self.exhausted:
                        return
            except _DATA_ERRORS as exc:
                yield MemberProblem(name, _reason(exc))

    def _decompressed(self, kind: str, stream: _Stream, name: str, depth: int) -> Iterator[Item]:
        with _DECOMPRESSORS[kind](cast(IO[bytes], stream)) as inner:
            out = _Stream(inner, name, guard=(self, stream, 0))
            base = re.split(r"[!/]", name)[-1]
            inner_name = _COMPRESSED_SUFFIX.sub("", _TAR_SHORTHAND.sub(".tar", base)) or base
            try:
                is_tar = out.peek_head()[257:262] == b"ustar"
            except MemberError as exc:
                yield MemberProblem(name, exc.reason)
                return
            # x.tar.gz is one container to the reader: its members are x.tar.gz!member
            yield from self.node(out, name if is_tar else f"{name}!{inner_name}", depth, None)

    def _tar_entries(self, stream: _Stream, name: str) -> _Entries:
        end: list[str] = []
        fileobj = cast(IO[bytes], stream)
        with tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_checked_tarinfo(end)) as tar:
            while (info := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # else it keeps every header
                if info.isdir():
                    continue
                link = info.issym() or info.islnk()
                skip = _skip_reason(info.name, link=link, regular=info.isfile())
                raw = None if skip else tar.extractfile(info)
                entry = None if raw is None else _Stream(raw, f"{name}!{info.name}")
                yield info.name, skip, entry, info.size
        if end:
            raise MemberError(name, end[0])

    def _random_access(
        self, kind: str, stream: _Stream, name: str, depth: int, on_disk: bool
    ) -> Iterator[Item]:
        with ExitStack() as stack:
            fp = stream
            if on_disk:
                stream.seek(0)
            else:  # nested: copy to an anonymous temporary file, bounded like a member
                spill = stack.enter_context(tempfile.TemporaryFile(prefix="exposure-"))
                try:
                    while data := stream.read(_COPY_BYTES):
                        if spill.tell() + len(data) > self.limits.max_member_bytes:
                            raise MemberError(name, "too_large")
                        spill.write(data)
                except MemberError as exc:
                    yield MemberProblem(name, exc.reason)
                    return
                spill.seek(0)
                fp = _Stream(cast(IO[bytes], spill), name, "unreadable")
            entries = self._zip_entries(fp, name) if kind == "zip" else self._7z_entries(fp, name)
            yield from self._container(name, entries, depth)

    def _zip_entries(self, fp: _Stream, name: str) -> _Entries:
        with zipfile.ZipFile(cast(IO[bytes], fp)) as archive:
            infos = [(_zip_name(info), info) for info in archive.infolist() if not info.is_dir()]
            # Sorted: deterministic, and each folder's files come out together.
            for member, info in sorted(infos, key=lambda pair: pair[0]):
                link = stat.S_ISLNK(info.external_attr >> 16)
                skip = _skip_reason(info.filename) or _skip_reason(
                    member, link=link, encrypted=bool(info.flag_bits & 0x1)
                )
                if skip is not None:
                    yield member, skip, None, None
                    continue
                base = fp.count  # fp counts what zipfile pulls: the ratio is measured
                try:
                    raw = archive.open(info)
                except _DATA_ERRORS as exc:
                    yield member, _reason(exc), None, None
                    continue
                with raw:
                    entry = _Stream(raw, f"{name}!{member}", guard=(self, fp, base))
                    yield member, None, entry, info.file_size

    def _7z_entries(self, fp: _Stream, name: str) -> _Entries:
        size = fp.seek(0, os.SEEK_END)
        fp.seek(0)
        with ExitStack() as stack:
            archive = stack.enter_context(py7zr.SevenZipFile(cast(IO[bytes], fp)))
            spill = _Spill7z(self, Path(stack.enter_context(tempfile.TemporaryDirectory())), size)
            encrypted, targets = archive.needs_password(), []
            for item in sorted(archive.files, key=lambda item: str(item.filename)):
                link, regular = item.is_symlink or item.is_junction, not item.is_socket
                skip = _skip_reason(item.filename, link=link, regular=regular, encrypted=encrypted)
                if item.is_directory:
                    continue
                if skip is not None:
                    yield item.filename, skip, None, None
                else:
                    targets.append(item.filename)
            # py7zr pushes data, and solid blocks decode only in order: members are decoded
            # into temporary files first (each under the limits), then read back one by one.
            failure: BaseException | None = None
            if targets:
                try:
                    archive.extract(targets=targets, factory=spill)
                except _DATA_ERRORS as exc:
                    failure = exc
                finally:
                    for writer in spill.writers:
                        writer.file.close()
            for member, (path, member_size) in sorted(spill.done.items()):
                with path.open("rb") as raw:
                    yield member, None, _Stream(raw, f"{name}!{member}", "unreadable"), member_size
                path.unlink()
            if failure is not None:
                raise failure


def iter_members(path: Path, limits: ArchiveLimits | None = None) -> Iterator[Item]:
    """Yield every readable member under ``path``, and a problem for everything else.

    The order is deterministic for the same input (folders and zip/7z entries sorted by name,
    tar entries in stream order). Read each :class:`Member` before advancing. Names are
    relative to ``path`` for a folder, else start with its file name; ``!`` separates a
    container from what is inside it.
    """
    walk = _Walk(limits or ArchiveLimits())
    name = path.name or str(path)
    if path.is_dir():
        yield from walk.folder(path, "")
    elif path.exists():
        yield from walk.file(path, name)
    else:
        yield MemberProblem(name, "unreadable")
    if walk.exhausted:
        yield MemberProblem(name, "total_too_large")
