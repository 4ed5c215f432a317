"""The native fast path for combo lists: plain e-mail-first lines, parsed and matched in C.

Most lines of most combo lists are ``someone@example.com:password``. When the C extension
``exposure._fastscan`` is built, the reader hands each all-ASCII block of decoded lines to
:func:`iter_combo_blocks`, which keeps those lines together as one :class:`ComboBlock` and
parses every other line with :func:`~exposure.dumps.formats.lists.iter_combo`, one event per
line as always. The pipeline then calls :meth:`ComboBlock.match`: records whose keys cannot
be enrolled only feed the corpus, and the rest become ordinary :class:`LeakRecord` objects.

The C code decides only where the outcome is certain and otherwise defers to the Python rules,
which stay the definition (``tests/unit/test_fastscan.py`` checks both agree). Without the
extension, :data:`AVAILABLE` is false and the reader never makes blocks.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, cast

from exposure.dumps.decode import AsciiBlock
from exposure.dumps.formats.lists import iter_combo
from exposure.dumps.records import LeakRecord, LeakType, Rejected
from exposure.matching import LookupTable

_fastscan: Any
try:
    from exposure import _fastscan  # type: ignore[attr-defined,no-redef]
except ImportError:  # not compiled here: the pure-Python path does everything
    _fastscan = None

AVAILABLE = _fastscan is not None
_RECORD = struct.Struct("=5i")  # line index, login start/end, password start/end
_SLOW = struct.Struct("=3i")  # line index, start, end
_POSITION = struct.Struct("=i")


@dataclass(frozen=True, slots=True)
class ComboBlock:
    """E-mail-first combo records of one block of lines, not yet turned into objects.

    One event per record for checkpointing: ``count`` events. The text holds plaintext
    credentials, so ``repr`` hides it; nothing here is ever logged or stored.
    """

    first_line_no: int
    text: str = field(repr=False)
    packed: bytes = field(repr=False)  # _RECORD per record, in line order

    @property
    def count(self) -> int:
        return len(self.packed) // _RECORD.size

    def tail(self, skip: int) -> ComboBlock:
        """The block without its first ``skip`` records (already committed by a resumed run)."""
        return ComboBlock(self.first_line_no, self.text, self.packed[skip * _RECORD.size :])

    def record(self, position: int) -> LeakRecord:
        line, login_start, login_end, pw_start, pw_end = _RECORD.unpack_from(
            self.packed, position * _RECORD.size
        )
        password = self.text[pw_start:pw_end] or None
        return LeakRecord(
            self.text[login_start:login_end], password, LeakType.COMBO, self.first_line_no + line
        )

    def match(
        self, pepper: bytes, index: LookupTable, feed_corpus: bool
    ) -> tuple[list[int], bytes]:
        """Positions of the records that need the Python path (they may match an enrolled
        identifier, or need a rule only Python has), and the concatenated 20-byte SHA-1 of the
        password of every other record that has one (only when ``feed_corpus``).
        """
        positions, digests = _fastscan.match_combo(
            self.text, self.packed, pepper, index.prefixes, index.starts, index.bits, feed_corpus
        )
        return [p for (p,) in _POSITION.iter_unpack(positions)], digests


def _is_block(item: object) -> bool:
    return isinstance(item, AsciiBlock)


def iter_combo_blocks(
    items: Iterable[tuple[int, str] | AsciiBlock],
) -> Iterator[LeakRecord | Rejected | ComboBlock]:
    """Like :func:`iter_combo`, but the fast lines of each :class:`AsciiBlock` come as one
    :class:`ComboBlock` (before the block's other lines, which come one item per line)."""
    for is_block, group in groupby(items, key=_is_block):
        if not is_block:
            yield from iter_combo(cast(Iterator[tuple[int, str]], group))
            continue
        for block in cast(Iterator[AsciiBlock], group):
            fast, slow = _fastscan.split_combo(block.text)
            if fast:
                yield ComboBlock(block.first_line_no, block.text, fast)
            if slow:
                first, text = block.first_line_no, block.text
                yield from iter_combo(
                    (first + line, text[start:end]) for line, start, end in _SLOW.iter_unpack(slow)
                )
