"""The native fast path for line lists: plain combo and URL lines, parsed and matched in C.

Most lines of most combo lists are ``someone@example.com:password``, and most lines of URL
lists ``https://site/login:someone@example.com:password``. When the C extension
``exposure.dumps._fastscan`` is built, the reader hands each UTF-8 block of lines of a ``combo`` or
``ulp`` member to :func:`iter_blocks` undecoded, which keeps the plain lines together as one
:class:`RecordBlock` and parses every other line with the format's Python parser, one event
per line as always. The pipeline then calls :meth:`RecordBlock.match`: records whose keys
cannot be enrolled only feed the corpus, and the rest become ordinary :class:`LeakRecord`
objects.

The C code decides only where the outcome is certain and otherwise defers to the Python rules,
which stay the definition (``tests/unit/test_fastscan.py`` checks both agree). Without the
extension, :data:`AVAILABLE` is false and the reader never makes blocks.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any, cast

from exposure.dumps.decode import TextBlock
from exposure.dumps.formats.lists import iter_combo, iter_ulp
from exposure.dumps.formats.sites import normalise_host
from exposure.dumps.records import LeakRecord, LeakType, Rejected

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_fastscan: Any
try:
    from exposure.dumps import _fastscan  # type: ignore[no-redef]
except ImportError:  # not compiled here: the pure-Python path does everything
    _fastscan = None

AVAILABLE = _fastscan is not None
FORMATS = frozenset(("combo", "ulp"))
# line index, login start/end, password start/end, host start/end (0, 0 for a combo record)
_RECORD = struct.Struct("=7i")
_SLOW = struct.Struct("=3i")  # line index, start, end
_POSITION = struct.Struct("=i")

_LineParser = Callable[[Iterable[tuple[int, str]]], Iterator[LeakRecord | Rejected]]

# Blocks are split on one thread (the C code releases the GIL) while the reader decodes the
# next ones, which keeps the event loop, whose thread reads, free for the batches in flight.
# Up to _LOOKAHEAD blocks (1 MiB each) are in flight; their events still come in file order.
_LOOKAHEAD = 8
_splitter: ThreadPoolExecutor | None = None


def splitter() -> ThreadPoolExecutor:
    """The splitting thread, started on first use (importing this module starts no thread)."""
    global _splitter
    if _splitter is None:
        _splitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="split")
    return _splitter


def shutdown_splitter() -> None:
    """Stop the splitting thread, if it was started (the runtime calls this as it closes); a
    later use starts a new one."""
    global _splitter
    pool, _splitter = _splitter, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class LookupTable:
    """What :meth:`RecordBlock.match` probes: sorted 64-bit prefixes of every enrolled
    fingerprint and a bucket table over their top ``bits`` bits (built by
    :meth:`exposure.ingest.matching.EnrolledIndex.lookup_table`)."""

    prefixes: npt.NDArray[np.uint64]
    starts: npt.NDArray[np.uint32]
    bits: int


@dataclass(frozen=True, slots=True)
class RecordBlock:
    """Fast records of one block of lines, not yet turned into objects.

    One event per record for checkpointing: ``count`` events. The data holds plaintext
    credentials, so ``repr`` hides it; nothing here is ever logged or stored.
    """

    first_line_no: int
    data: bytes = field(repr=False)  # the lines, as read
    packed: bytes = field(repr=False)  # _RECORD per record, in line order

    @property
    def count(self) -> int:
        return len(self.packed) // _RECORD.size

    def tail(self, skip: int) -> RecordBlock:
        """The block without its first ``skip`` records (already committed by a resumed run)."""
        return RecordBlock(self.first_line_no, self.data, self.packed[skip * _RECORD.size :])

    def record(self, position: int) -> LeakRecord:
        line, login_start, login_end, pw_start, pw_end, host_start, host_end = _RECORD.unpack_from(
            self.packed, position * _RECORD.size
        )
        data, line_no = self.data, self.first_line_no + line
        login = data[login_start:login_end].decode("ascii")  # fast lines are printable ASCII
        password = data[pw_start:pw_end].decode("ascii") or None
        if host_end == 0:
            return LeakRecord(login, password, LeakType.COMBO, line_no)
        site = normalise_host(data[host_start:host_end].decode("ascii"))
        return LeakRecord(login, password, LeakType.ULP, line_no, site=site)

    def match(
        self, pepper: bytes, index: LookupTable, feed_corpus: bool
    ) -> tuple[list[int], bytes]:
        """Positions of the records that need the Python path (they may match an enrolled
        identifier, or need a rule only Python has), and the concatenated 20-byte SHA-1 of the
        password of every other record that has one (only when ``feed_corpus``).

        Runs without the GIL: call it from several threads at once.
        """
        positions, digests = _fastscan.match_combo(
            self.data, self.packed, pepper, index.prefixes, index.starts, index.bits, feed_corpus
        )
        return [p for (p,) in _POSITION.iter_unpack(positions)], digests


def _is_block(item: object) -> bool:
    return isinstance(item, TextBlock)


def iter_blocks(
    fmt: str, items: Iterable[tuple[int, str] | TextBlock]
) -> Iterator[LeakRecord | Rejected | RecordBlock]:
    """Parse a ``combo`` or ``ulp`` member like :func:`iter_combo` / :func:`iter_ulp`, except
    that the fast lines of each :class:`TextBlock` come as one :class:`RecordBlock` (before
    the block's other lines, decoded and parsed one item per line)."""
    split = _fastscan.split_combo if fmt == "combo" else _fastscan.split_ulp
    parse: _LineParser = iter_combo if fmt == "combo" else iter_ulp
    splitting: deque[tuple[TextBlock, Future[tuple[bytes, bytes]]]] = deque()
    try:
        for is_block, group in groupby(items, key=_is_block):
            if not is_block:
                while splitting:
                    yield from _block_events(parse, *splitting.popleft())
                yield from parse(cast(Iterator[tuple[int, str]], group))
                continue
            for block in cast(Iterator[TextBlock], group):
                splitting.append(
                    (block, splitter().submit(split, block.data, block.start, block.end))
                )
                if len(splitting) > _LOOKAHEAD:
                    yield from _block_events(parse, *splitting.popleft())
        while splitting:
            yield from _block_events(parse, *splitting.popleft())
    finally:  # an abandoned reader leaves no work queued
        for _, pending in splitting:
            pending.cancel()


def _block_events(
    parse: _LineParser, block: TextBlock, splitting: Future[tuple[bytes, bytes]]
) -> Iterator[LeakRecord | Rejected | RecordBlock]:
    fast, slow = splitting.result()
    if fast:
        yield RecordBlock(block.first_line_no, block.data, fast)
    if slow:
        first, data = block.first_line_no, block.data
        yield from parse(
            (first + line, data[start:end].decode("utf-8"))
            for line, start, end in _SLOW.iter_unpack(slow)
        )
