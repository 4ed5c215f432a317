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
``too_large`` (one member), ``archive_too_large`` (one zip or 7z archive's entries together;
its other entries are skipped), ``total_too_large`` (the walk's budget; the rest is skipped),
``overlapping_entries`` (a zip whose entries share their data, or list one member many times:
the shape of a zip bomb that no ratio catches; the archive is not read),
``duplicate_entry`` (a zip entry whose name an earlier one has; the first is read),
``too_many_members``, ``too_deep``, ``path_traversal`` (``..`` or absolute), ``symlink``
(symbolic or hard link: never followed), ``special_file`` (device, FIFO), ``unreadable`` (OS).

The byte accounting, the stream wrapper and the decoders live in :mod:`exposure.dumps.streams`.
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack, closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, Self, cast

from exposure.dumps.streams import (
    COPY_BYTES,
    DATA_ERRORS,
    DECOMPRESSORS,
    ArchiveBudget,
    ArchiveLimits,
    Budget,
    MemberError,
    Stream,
    TarEntry,
    reason_for,
)

__all__ = ["ArchiveLimits", "Member", "MemberError", "MemberProblem", "iter_members"]


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
_Entry = tuple[str, str | None, "Stream | None", int | None]
_Entries = Generator[_Entry, None, None]


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


# A local file header without its name and extra field: the least an entry occupies before
# its data.
_LOCAL_HEADER_BYTES = 30


def _overlapping(archive: zipfile.ZipFile) -> bool:
    """Whether two entries' data share bytes, or an entry runs into the central directory:
    the layout of a non-recursive zip bomb (one deflated member listed a thousand times
    expands a thousandfold, each entry within every per-member limit). A real archive stores
    its entries one after the other."""
    infos = sorted(archive.infolist(), key=lambda info: info.header_offset)
    ends = [info.header_offset for info in infos[1:]] + [archive.start_dir]
    return any(
        info.header_offset + _LOCAL_HEADER_BYTES + info.compress_size > end
        for info, end in zip(infos, ends, strict=True)
    )


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


Listener = Callable[[str, list[str]], None]
"""``on_listing(prefix, names)``: a folder's or an archive's entry names (relative to
``prefix``, which ends with ``/`` or ``!`` or is empty; folders end with ``/``), told before
any of its members is yielded."""


class _Walk:
    """One walk: the limits, the byte budget shared by every container in it, and who hears
    of each listing."""

    def __init__(self, limits: ArchiveLimits, on_listing: Listener | None) -> None:
        self.limits, self.budget = limits, Budget(limits)
        self.on_listing: Listener = on_listing or (lambda _prefix, _names: None)

    def folder(self, folder: Path, prefix: str) -> Iterator[Item]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError:
            yield MemberProblem(prefix.rstrip("/") or folder.name, "unreadable")
            return
        self.on_listing(
            prefix, [e.name + "/" if e.is_dir(follow_symlinks=False) else e.name for e in entries]
        )
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
            if self.budget.exhausted:
                return

    def file(self, path: Path, name: str) -> Iterator[Item]:
        try:
            raw = path.open("rb")
        except OSError:
            yield MemberProblem(name, "unreadable")
            return
        with raw:
            size = os.fstat(raw.fileno()).st_size
            yield from self.node(Stream(raw, name, "unreadable"), name, 0, size, on_disk=True)

    def node(
        self, stream: Stream, name: str, depth: int, size: int | None, on_disk: bool = False
    ) -> Iterator[Item]:
        try:
            kind = _sniff(stream.peek_head(), name)
        except MemberError as exc:
            yield MemberProblem(name, exc.reason)
            return
        if kind is None:
            handed: list[Stream] = [stream]

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
        elif kind in DECOMPRESSORS:
            yield from self._decompressed(kind, stream, name, depth + 1)
        else:
            yield from self._random_access(kind, stream, name, depth + 1, on_disk)

    def _container(
        self, name: str, entries: _Entries, depth: int, share: ArchiveBudget | None = None
    ) -> Iterator[Item]:
        """Walk one archive's entries; an error of the archive itself ends it as a problem,
        and so does reaching the archive's ``share`` of the budget."""
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
                    if self.budget.exhausted:
                        return
                    if share is not None and share.exhausted:
                        yield MemberProblem(name, "archive_too_large")
                        return
            except DATA_ERRORS as exc:
                yield MemberProblem(name, reason_for(exc))

    def _decompressed(self, kind: str, stream: Stream, name: str, depth: int) -> Iterator[Item]:
        with DECOMPRESSORS[kind](cast(IO[bytes], stream)) as inner:
            out = Stream(inner, name, guard=(self.budget, stream, 0))
            base = re.split(r"[!/]", name)[-1]
            inner_name = _COMPRESSED_SUFFIX.sub("", _TAR_SHORTHAND.sub(".tar", base)) or base
            try:
                is_tar = out.peek_head()[257:262] == b"ustar"
            except MemberError as exc:
                yield MemberProblem(name, exc.reason)
                return
            out.soft_eof = is_tar  # the tar walk reports a cut: see _tar_entries
            # x.tar.gz is one container to the reader: its members are x.tar.gz!member
            yield from self.node(out, name if is_tar else f"{name}!{inner_name}", depth, None)

    def _tar_entries(self, stream: Stream, name: str) -> _Entries:
        end: list[str] = []
        fileobj = cast(IO[bytes], stream)
        with tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_checked_tarinfo(end)) as tar:
            while (info := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # else it keeps every header
                if info.isdir():
                    continue
                link = info.issym() or info.islnk()
                skip = _skip_reason(info.name, link=link, regular=info.isfile())
                member = f"{name}!{info.name}"
                raw: IO[bytes] | None = None
                if skip is None and info.sparse is None:  # the data follows the header
                    raw = cast(IO[bytes], TarEntry(cast(IO[bytes], tar.fileobj), info.size, member))
                elif skip is None:
                    raw = tar.extractfile(info)
                entry = None if raw is None else Stream(raw, member)
                yield info.name, skip, entry, info.size
        if end or stream.cut:
            raise MemberError(name, end[0] if end else "truncated")

    def _random_access(
        self, kind: str, stream: Stream, name: str, depth: int, on_disk: bool
    ) -> Iterator[Item]:
        with ExitStack() as stack:
            fp = stream
            if on_disk:
                stream.seek(0)
            else:  # nested: copy to an anonymous temporary file, bounded like a member
                spill = stack.enter_context(tempfile.TemporaryFile(prefix="exposure-"))
                try:
                    while data := stream.read(COPY_BYTES):
                        if spill.tell() + len(data) > self.limits.max_member_bytes:
                            raise MemberError(name, "too_large")
                        spill.write(data)
                except MemberError as exc:
                    yield MemberProblem(name, exc.reason)
                    return
                spill.seek(0)
                fp = Stream(cast(IO[bytes], spill), name, "unreadable")
            share = ArchiveBudget(self.budget)
            if kind == "zip":
                entries = self._zip_entries(fp, name, share)
            else:
                entries = self._7z_entries(fp, name, share)
            yield from self._container(name, entries, depth, share)

    def _zip_entries(self, fp: Stream, name: str, share: ArchiveBudget) -> _Entries:
        with zipfile.ZipFile(cast(IO[bytes], fp)) as archive:
            if _overlapping(archive):
                raise MemberError(name, "overlapping_entries")
            infos = [(_zip_name(info), info) for info in archive.infolist() if not info.is_dir()]
            self.on_listing(name + "!", [member for member, _ in infos])
            seen: set[str] = set()
            # Sorted (stably): deterministic, and each folder's files come out together.
            for member, info in sorted(infos, key=lambda pair: pair[0]):
                if member in seen:
                    yield member, "duplicate_entry", None, None
                    continue
                seen.add(member)
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
                except DATA_ERRORS as exc:
                    yield member, reason_for(exc), None, None
                    continue
                with raw:
                    entry = Stream(raw, f"{name}!{member}", guard=(share, fp, base))
                    yield member, None, entry, info.file_size

    def _7z_entries(self, fp: Stream, name: str, share: ArchiveBudget) -> _Entries:
        from exposure.dumps import sevenzip  # py7zr is imported only for a 7z archive

        return sevenzip.entries(
            fp, name, share, on_listing=self.on_listing, skip_reason=_skip_reason
        )


def iter_members(
    path: Path, limits: ArchiveLimits | None = None, on_listing: Listener | None = None
) -> Iterator[Item]:
    """Yield every readable member under ``path``, and a problem for everything else.

    The order is deterministic for the same input (folders and zip/7z entries sorted by name,
    tar entries in stream order). Read each :class:`Member` before advancing. Names are
    relative to ``path`` for a folder, else start with its file name; ``!`` separates a
    container from what is inside it. ``on_listing`` hears of each folder's and each zip or
    7z archive's names before their members come (a tar is streamed: it has no listing).
    """
    walk = _Walk(limits or ArchiveLimits(), on_listing)
    name = path.name or str(path)
    if path.is_dir():
        yield from walk.folder(path, "")
    elif path.exists():
        yield from walk.file(path, name)
    else:
        yield MemberProblem(name, "unreadable")
    if walk.budget.exhausted:
        yield MemberProblem(name, "total_too_large")
