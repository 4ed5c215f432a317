"""Per-file text decoding of a binary stream into numbered lines, without loading the file.

Leak files come in every encoding a Windows box can produce, often several in one file:

* a byte order mark wins: UTF-8 (``utf-8-sig``), UTF-16 LE/BE. BOM-less UTF-16 is recognised
  by its NUL pattern in the first KiB (read naively it gives ``U\\x00R\\x00L\\x00`` and zero
  credentials, silently);
* otherwise each line is UTF-8 when it is valid UTF-8, else cp932 (*not* ``shift_jis``:
  ``81 7C`` is U+FF0D in cp932 but U+2212 in shift_jis, which NFKC leaves alone);
* a line valid in neither, a line holding NUL bytes, and a line longer than the limit are
  yielded as a :class:`LineProblem` at their line number, so the caller counts them: no line
  is dropped silently and none is "repaired" with replacement characters.

Lines end at ``\\n`` or ``\\r\\n``; exactly one terminator is removed and nothing else is touched
(passwords may end in spaces). A lone ``\\r`` is not a line break: old-Mac files read as one
long line and are reported ``too_long`` rather than guessed at.

A stream that fails mid-way (a truncated or corrupt compressed file, a limit reached) raises
:class:`~exposure.dumps.streams.MemberError`; the lines read before it are still yielded, the
line the failure cut in two is a ``truncated`` problem (its end, maybe a password's, is
missing), and :attr:`DecodedLines.error` holds the failure for the caller to report.

The hot path (plain ASCII/UTF-8) decodes a whole chunk of complete lines at once and splits
it in C; the per-line fallback only runs for the lines of a chunk that are not UTF-8. With
:attr:`DecodedLines.text_blocks` set (a native parser reads the member), a valid UTF-8 chunk
is not decoded at all but handed over whole as a :class:`TextBlock`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from itertools import count
from typing import BinaryIO, cast

try:  # TextBlocks exist for the native parser, which also scans them 5x quicker
    from exposure.dumps._fastscan import scan_lines  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - only without the extension, when no blocks are made

    def scan_lines(data: bytes, start: int = 0, end: int = -1) -> tuple[int, bool]:
        block = data[start:end] if end >= 0 else data[start:]
        return block.count(b"\n"), block.isascii() and b"\x00" not in block


from exposure.dumps.streams import MemberError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "DecodedLines", "LineProblem", "TextBlock", "decode_lines"]

DEFAULT_MAX_LINE_BYTES = 1 << 20
# 64 KiB chunks measured fastest (256 KiB: -10%, 1 MiB: -20%): the decoded text stays in cache
# while it is split, and per-chunk Python overhead is already negligible at this size.
_CHUNK_BYTES = 64 << 10
# Chunks handed whole to a native parser as TextBlocks are larger: each costs a hand-over to a
# worker thread (and the GIL back), so fewer, larger ones keep every core busy.
_BLOCK_CHUNK_BYTES = 1 << 20
_SNIFF_BYTES = 1024
# What a cp932 decode of binary junk looks like: Python's cp932 maps the bytes 0x80, 0xA0
# and 0xFD-0xFF to U+0080 / private-use characters instead of failing, and the user-defined
# area is private use too; no credential line needs those or C0 control characters.
_NOT_CP932_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80\ue000-\uf8ff]")
_ESCAPED = re.compile("[\udc80-\udcff]")
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class LineProblem(Enum):
    """Why a line is yielded without text; ``.value`` is the stable rejection reason code.

    Deliberately not a ``str`` subclass: a problem must never pass for a line's text.
    """

    TOO_LONG = "too_long"
    UNDECODABLE = "undecodable"
    BINARY = "binary"
    TRUNCATED = "truncated"


@dataclass(frozen=True, slots=True)
class TextBlock:
    """Consecutive complete lines of valid UTF-8 without NUL, undecoded: ``data[start:end]``
    holds ``lines`` lines, each ending with ``\\n`` or ``\\r\\n`` (the terminator, as for
    single lines), the first numbered ``first_line_no``. ``data`` is the chunk as read: a
    block is a range of it, not a copy. Yielded instead of single lines once
    :attr:`DecodedLines.text_blocks` is set, for a native parser; its ``repr`` hides the data
    (it holds credentials)."""

    first_line_no: int
    data: bytes = field(repr=False)
    lines: int
    start: int
    end: int


ProblemSink = Callable[[int, LineProblem], None]
_Item = tuple[int, str | LineProblem] | TextBlock
_Out = list[Iterable[_Item]]


def _sniff_utf16(sample: bytes) -> str | None:
    """Name the UTF-16 byte order of a BOM-less sample, or ``None`` if it does not look UTF-16.

    Text that is mostly ASCII, written as UTF-16, has a NUL in one byte of nearly every pair
    and almost never in the other; real UTF-8 or cp932 text has no NULs at all.
    """
    sample = sample[: len(sample) & ~1]
    pairs = len(sample) // 2
    if pairs < 4:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    if odd_nuls >= 0.3 * pairs and even_nuls <= 0.05 * pairs:
        candidate = "utf-16-le"
    elif even_nuls >= 0.3 * pairs and odd_nuls <= 0.05 * pairs:
        candidate = "utf-16-be"
    else:
        return None
    # Binary data can have the same NUL pattern: demand mostly printable text as well.
    text = sample.decode(candidate, errors="replace")
    controls = sum(1 for ch in text if ch < " " and ch not in "\r\n\t")
    return candidate if controls <= 0.1 * len(text) else None


class DecodedLines:
    """Numbered lines of one decoded file; iterate once.

    Iterating yields ``(line_no, text)`` with ``line_no`` 1-based, or ``(line_no, problem)``
    for a line that could not be read as text. :meth:`texts` yields only the text lines and
    reports problems through a callback (no per-line filtering cost for the caller).

    ``encoding`` names the decoder(s) used so far: ``utf-8``, ``utf-8-sig``, ``utf-16-le``,
    ``utf-16-be``, ``cp932``, or ``utf-8+cp932`` / ``utf-8-sig+cp932`` when both UTF-8
    (non-ASCII) and cp932 lines were found. It is final once iteration is done. ``bytes_read``
    counts raw bytes consumed from the stream; ``lines`` counts lines yielded so far.
    ``error``: the :class:`~exposure.dumps.streams.MemberError` that ended the stream early,
    once iteration met it (``None`` for a stream read to its end).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        chunk_bytes: int = _CHUNK_BYTES,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        if max_line_bytes < 1 or chunk_bytes < 1:
            raise ValueError("max_line_bytes and chunk_bytes must be positive")
        self._stream = stream
        self._max = max_line_bytes
        # A chunk never exceeds the line limit, so a line wholly inside one chunk cannot be
        # too long and only the line that continues a carried-over tail needs a length check.
        self._chunk = min(chunk_bytes, max_line_bytes)
        self._block_chunk = min(_BLOCK_CHUNK_BYTES, max_line_bytes)
        self._on_read = on_read
        self._started = False
        self.bytes_read = 0
        self.lines = 0
        self.text_blocks = False  # set to receive TextBlock items from the next chunk on
        self._utf8_non_ascii = False
        self._used_cp932 = False
        self.error: MemberError | None = None
        head = self._read_head()
        self._base = "utf-8"
        for bom, name in _BOMS:
            if head.startswith(bom):
                self._base, head = name, head[len(bom) :]
                break
        else:
            self._base = _sniff_utf16(head) or "utf-8"
        self._head = head

    @property
    def encoding(self) -> str:
        """The decoder(s) used so far (see the class docstring)."""
        if not self._used_cp932:
            return self._base
        if self._base == "utf-8" and not self._utf8_non_ascii:
            return "cp932"
        return f"{self._base}+cp932"

    def __iter__(self) -> Iterator[tuple[int, str | LineProblem]]:
        # TextBlock items come only when text_blocks is set, which callers of this do not.
        return cast(Iterator[tuple[int, str | LineProblem]], self._run(None))

    def texts(self, on_problem: ProblemSink) -> Iterator[tuple[int, str]]:
        """Yield only ``(line_no, text)``; call ``on_problem(line_no, problem)`` for the rest.

        The callback runs at the problem line's position in the stream, before the next text
        line is yielded, so the caller sees problems in line order.
        """
        # With a sink, _run never yields a problem tuple.
        return cast(Iterator[tuple[int, str]], self._run(on_problem))

    # -- reading -------------------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            data = self._stream.read(size)
        except MemberError as exc:
            self.error = exc  # the end of what can be read: what came before stands
            return b""
        if data:
            self.bytes_read += len(data)
            if self._on_read is not None:
                self._on_read(len(data))
        return data

    def _read_head(self) -> bytes:
        # Streams from decompressors may return short reads: loop until the sniff window is full.
        parts: list[bytes] = []
        have = 0
        while have < _SNIFF_BYTES:
            data = self._read(_SNIFF_BYTES - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    def _raw_chunks(self) -> Iterator[bytes]:
        if self._head:
            yield self._head
        self._head = b""
        while data := self._read(self._block_chunk if self.text_blocks else self._chunk):
            yield data

    def _utf16_as_utf8(self) -> Iterator[bytes]:
        """Transcode UTF-16 to UTF-8 so one splitter serves every encoding.

        Unpaired surrogates pass through as invalid UTF-8 and a dangling odd byte at the end
        becomes ``\\xff``: either way that line fails strict UTF-8 and is reported undecodable.
        """
        decoder = codecs.getincrementaldecoder(self._base)("surrogatepass")
        for raw in self._raw_chunks():
            text = decoder.decode(raw)
            if text:
                yield text.encode("utf-8", "surrogatepass")
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            yield b"\xff"
        else:
            if tail:
                yield tail.encode("utf-8", "surrogatepass")

    def _pieces(self) -> Iterator[bytes]:
        chunks = self._utf16_as_utf8() if self._base.startswith("utf-16") else self._raw_chunks()
        limit = self._max
        for chunk in chunks:
            if len(chunk) <= limit:
                yield chunk
            else:  # the sniffed head or a transcoded chunk may exceed a small limit
                for start in range(0, len(chunk), limit):
                    yield chunk[start : start + limit]

    # -- splitting -----------------------------------------------------------------------

    def _run(self, sink: ProblemSink | None) -> Iterator[_Item]:
        if self._started:
            raise RuntimeError("DecodedLines can be iterated only once")
        self._started = True
        limit = self._max
        carry = bytearray()
        skipping = False  # inside a too-long line: discard up to its end
        # Helpers append finished pieces (zip objects or small lists) to `out` and only this
        # generator yields: nested generators would add a frame switch per line per level.
        out: list[Iterable[_Item]] = []
        for chunk in self._pieces():
            start = 0
            if skipping:
                nl = chunk.find(b"\n")
                if nl < 0:
                    continue
                skipping = False
                start = nl + 1
            last = chunk.rfind(b"\n", start)
            if last < 0:
                carry += chunk[start:] if start else chunk
                if len(carry) > limit:
                    carry.clear()
                    skipping = True
                    self._problem(LineProblem.TOO_LONG, sink, out)
            else:
                if carry:
                    first = chunk.find(b"\n", start)
                    if len(carry) + first - start > limit:
                        self._problem(LineProblem.TOO_LONG, sink, out)
                    else:
                        carry += chunk[start : first + 1]
                        self._block(bytes(carry), 0, len(carry), sink, out)
                    carry.clear()
                    start = first + 1
                if start <= last:
                    self._block(chunk, start, last + 1, sink, out)
                carry += chunk[last + 1 :]
            for part in out:
                yield from part
            out.clear()
        if carry and not skipping:
            if self.error is not None:  # the line the failure cut: its end is missing
                self._problem(LineProblem.TRUNCATED, sink, out)
            else:
                carry += b"\n"
                self._block(bytes(carry), 0, len(carry), sink, out)
            for part in out:
                yield from part

    def _problem(self, problem: LineProblem, sink: ProblemSink | None, out: _Out) -> None:
        self.lines += 1
        # Queued like a line, so a sink hears of it only after the lines before it were yielded.
        out.append(((self.lines, problem),) if sink is None else _notify(sink, self.lines, problem))

    def _block(
        self, data: bytes, start: int, end: int, sink: ProblemSink | None, out: _Out
    ) -> None:
        """Decode complete lines (``data[start:end]``, ending with a newline): whole as UTF-8
        when possible, or handed over undecoded as a :class:`TextBlock`."""
        if self.text_blocks:
            count, plain = scan_lines(data, start, end)
            if not plain:  # non-ASCII or NUL: the checks below need the block on its own
                data, start, end = data[start:end], 0, end - start
            if plain or (b"\x00" not in data and self._is_utf8(data)):
                out.append((TextBlock(self.lines + 1, data, count, start, end),))
                self.lines += count
                return
        block = data[start:end] if start or end != len(data) else data
        # surrogateescape never fails: bytes that are not UTF-8 come through as lone surrogates
        # (PEP 383), so one C-speed decode serves the common all-UTF-8 case, and a line that
        # holds escapes round-trips to its exact bytes for the fallback decoder.
        text = block.decode("utf-8", "surrogateescape")
        if text.isascii() or not _ESCAPED.search(text):
            self._lines(text, sink, out)
            return
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()
        for line in lines:
            decoded: str | LineProblem
            if _ESCAPED.search(line):
                decoded = self._fallback(line.encode("utf-8", "surrogateescape"))
            elif "\x00" in line:
                decoded = LineProblem.BINARY
            else:
                decoded = line
                if not line.isascii():
                    self._utf8_non_ascii = True
            if isinstance(decoded, LineProblem):
                self._problem(decoded, sink, out)
            else:
                self.lines += 1
                out.append(((self.lines, decoded),))

    def _is_utf8(self, block: bytes) -> bool:
        if block.isascii():
            return True
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
        self._utf8_non_ascii = True
        return True

    def _lines(self, text: str, sink: ProblemSink | None, out: _Out) -> None:
        if not self._utf8_non_ascii and not text.isascii():
            self._utf8_non_ascii = True
        if "\r" in text:
            # Only a \r directly before \n is a terminator; any other \r is content.
            text = text.replace("\r\n", "\n")
        lines = text.split("\n")
        lines.pop()  # text ends with "\n": the last split element is empty
        if "\x00" in text:
            for line in lines:
                if "\x00" in line:
                    self._problem(LineProblem.BINARY, sink, out)
                else:
                    self.lines += 1
                    out.append(((self.lines, line),))
            return
        out.append(zip(count(self.lines + 1), lines))
        self.lines += len(lines)

    def _fallback(self, raw: bytes) -> str | LineProblem:
        """Decode one line that is not valid UTF-8: cp932 for byte files, else undecodable."""
        if self._base.startswith("utf-16"):
            return LineProblem.UNDECODABLE  # transcoded: invalid UTF-8 means invalid UTF-16
        try:
            text = raw.decode("cp932")
        except UnicodeDecodeError:
            return LineProblem.UNDECODABLE
        if "\x00" in text:
            return LineProblem.BINARY
        if _NOT_CP932_TEXT.search(text):
            return LineProblem.UNDECODABLE
        self._used_cp932 = True
        return text


def _notify(sink: ProblemSink, line_no: int, problem: LineProblem) -> Iterator[_Item]:
    sink(line_no, problem)
    yield from ()


def decode_lines(
    stream: BinaryIO,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_read: Callable[[int], None] | None = None,
) -> DecodedLines:
    """Sniff ``stream``'s encoding (reads up to 1 KiB now) and return its lines, lazily.

    ``max_line_bytes`` bounds memory: a longer line is skipped in pieces and yielded as
    :attr:`LineProblem.TOO_LONG`. ``on_read(n)`` is called with each increment of raw bytes
    read from the stream (for a progress bar).
    """
    return DecodedLines(stream, max_line_bytes=max_line_bytes, on_read=on_read)
