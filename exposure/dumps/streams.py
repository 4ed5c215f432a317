"""Bounded byte streams for the container walk: limits, accounting and decoders.

:class:`Stream` wraps every stream the walk reads. It replays the bytes peeked to sniff a type,
counts what it reads, turns whatever a library raises for bad data into a :class:`MemberError`
with a stable reason, and charges decompressed bytes to the walk's :class:`Budget`, which
enforces :class:`ArchiveLimits` on the bytes actually produced. Also here: the decoder for each
compressor (zstd needs its own, to notice truncation).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, cast

import zstandard

from exposure.errors import SkippableError

__all__ = [
    "COPY_BYTES",
    "DATA_ERRORS",
    "DECOMPRESSORS",
    "ArchiveBudget",
    "ArchiveLimits",
    "Budget",
    "MemberError",
    "Stream",
    "TarEntry",
    "reason_for",
]

_HEAD_BYTES = 512  # tar's "ustar" magic sits at offset 257
COPY_BYTES = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLimits:
    """Limits against decompression bombs and oversized input, all counted while streaming.

    ``max_ratio``: output / input bytes of one decompression step, checked past
    ``ratio_grace_bytes`` (small repetitive files are legitimate). Deflate tops out near 1032:1
    and text rarely passes 20:1, so 200 stops a zero-filled bomb long before it matters.
    ``max_member_bytes``: one decompressed stream or spilled archive. ``max_archive_bytes``:
    everything the entries of one zip or 7z archive expand to (many members each within the
    limits can still add up). ``max_total_bytes``: everything decompressed in one walk.
    ``max_depth``: layers of archives and compression (``a.zip!b.tar.gz!c.txt`` has three:
    zip, gz, tar). ``max_members``: entries of one archive.
    """

    max_ratio: float = 200.0
    ratio_grace_bytes: int = 16 << 20
    max_member_bytes: int = 8 << 30
    max_archive_bytes: int = 32 << 30
    max_total_bytes: int = 64 << 30
    max_depth: int = 4
    max_members: int = 1_000_000


class MemberError(SkippableError):
    """Reading a member failed or hit a limit: skip it and report ``reason``."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


# Whatever library raises them, these mean "this data is bad" (for OSError, see Stream).
# (py7zr's, for 7z archives, become MemberError where the archive is read: exposure.dumps.sevenzip.)
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError)
_CODEC_ERRORS = (zlib.error, lzma.LZMAError, zstandard.ZstdError, EOFError, OSError)
_OTHER_ERRORS = (MemberError, NotImplementedError)
DATA_ERRORS = (*_OTHER_ERRORS, *_ARCHIVE_ERRORS, *_CODEC_ERRORS)


def reason_for(exc: BaseException) -> str:
    """The stable reason code for one of :data:`DATA_ERRORS`."""
    if isinstance(exc, MemberError):
        return exc.reason
    # tarfile tells a stream that ends inside a member only by this message.
    if isinstance(exc, EOFError) or str(exc).startswith("unexpected end of data"):
        return "truncated"
    if isinstance(exc, NotImplementedError):
        return "unsupported"
    return "corrupt"


class Budget:
    """One walk's byte budget, shared by every container in it, checked as bytes are produced."""

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


class ArchiveBudget(Budget):
    """One zip or 7z archive's share of the walk's budget: what its entries expand to, bounded
    by ``max_archive_bytes``; once that is reached the archive is ``exhausted`` and the walk
    reads none of its remaining entries."""

    def __init__(self, walk: Budget) -> None:
        super().__init__(walk.limits)
        self.walk = walk

    def charge(self, name: str, added: int, size: int, produced: int, compressed: int) -> None:
        self.used += added
        if self.used > self.limits.max_archive_bytes:
            self.exhausted = True
            raise MemberError(name, "archive_too_large")
        self.walk.charge(name, added, size, produced, compressed)


class Stream(io.BufferedIOBase):
    """Read-through wrapper: replays a peeked head, counts bytes, turns library errors into
    :class:`MemberError` (a bare ``OSError`` means ``failure``). With a ``guard`` (budget,
    compressed source, its count at the start) it charges what it reads to the walk's limits."""

    def __init__(
        self,
        inner: IO[bytes],
        name: str,
        failure: str = "corrupt",
        guard: tuple[Budget, Stream, int] | None = None,
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
        # Set for a decompressed tar: a cut ends the stream quietly, so that tarfile hands
        # over what it read before it (it drops a short read's data when the read raises).
        self.soft_eof = False
        self.cut = False

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
            return b"".join(iter(partial(self.read, COPY_BYTES), b""))
        head = self._head
        if head and self._head_pos < len(head):
            data = head[self._head_pos : self._head_pos + size]
            self._head_pos += len(data)
            return data
        return self._pull(size)

    read1 = read

    def _pull(self, size: int) -> bytes:
        if self.cut:
            return b""
        if self._error is not None:
            raise self._error  # once a limit trips, nothing after it is trusted
        try:
            data = self._read(size)
            self.count += len(data)
            if self._guard is not None and data:
                budget, source, base = self._guard
                budget.charge(self.name, len(data), self.count, self.count, source.count - base)
        except MemberError as exc:
            self._error = exc
            raise
        except DATA_ERRORS as exc:
            reason = self._failure if type(exc) is OSError else reason_for(exc)
            if self.soft_eof and reason == "truncated":
                self.cut = True
                return b""
            self._error = MemberError(self.name, reason)
            raise self._error from exc
        return data


class TarEntry(io.RawIOBase):
    """The data of one regular tar member, read straight from the tar stream: ``size`` bytes
    from where the stream stands after the member's header. Unlike ``TarFile.extractfile``,
    which drops a short read's data, it hands over every byte before a cut and then raises
    :class:`MemberError` ``truncated``."""

    def __init__(self, source: IO[bytes], size: int, name: str) -> None:
        super().__init__()
        self._source, self._remaining, self._name = source, size, name

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._source.read(want)
        if not data:
            raise MemberError(self._name, "truncated")
        self._remaining -= len(data)
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


DECOMPRESSORS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gz": lambda f: cast(IO[bytes], gzip.GzipFile(fileobj=f, mode="rb")),
    "bz2": lambda f: cast(IO[bytes], bz2.BZ2File(f)),
    "xz": lambda f: cast(IO[bytes], lzma.LZMAFile(f)),
    "zst": lambda f: cast(IO[bytes], _ZstdReader(f)),
}
