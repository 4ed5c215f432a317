"""A truncated gz, xz, zst or tar yields every line that can still be read, then says it was
cut: a problem event, the member's outcome and a log line. Each archive is built and cut here;
every value is invented."""

from __future__ import annotations

import gzip
import io
import logging
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from exposure.dumps.containers import MemberProblem
from exposure.dumps.fastpath import RecordBlock
from exposure.dumps.reader import MemberEnd, read_dump
from exposure.dumps.records import LeakRecord, Rejected

# Large enough that the cut falls megabytes in, past the blocks the native path reads ahead.
LINES = 120_000
TEXT = "".join(f"user{n}@example.jp:{os.urandom(6).hex()}\n" for n in range(LINES)).encode()


def _zstd_prefix(cut: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(cut)


def _tar(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("list.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# name, how the whole file is made, how much of the text the cut file still holds
CASES: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
    ("list.txt.gz", gzip.compress, lambda cut: zlib.decompressobj(wbits=31).decompress(cut)),
    (
        "list.txt.xz",
        lambda data: lzma.compress(data, preset=0),
        lambda cut: lzma.LZMADecompressor().decompress(cut),
    ),
    ("list.txt.zst", zstandard.compress, _zstd_prefix),
    ("list.tar", _tar, lambda cut: cut[512:]),
    (
        "list.tar.gz",
        lambda data: gzip.compress(_tar(data)),
        lambda cut: zlib.decompressobj(wbits=31).decompress(cut)[512:],
    ),
]


def _summary(path: Path) -> tuple[int, list[str], list[MemberEnd], list[Rejected]]:
    records, problems, ends, rejected = 0, [], [], []
    for event in read_dump(path, is_broker_site=lambda _site: False):
        if isinstance(event, RecordBlock):
            records += event.count
        elif isinstance(event, LeakRecord):
            records += 1
        elif isinstance(event, MemberProblem):
            problems.append(event.reason)
        elif isinstance(event, MemberEnd):
            ends.append(event)
        elif isinstance(event, Rejected):
            rejected.append(event)
    return records, problems, ends, rejected


@pytest.mark.parametrize(("name", "make", "readable"), CASES, ids=[c[0] for c in CASES])
def test_every_line_before_the_cut_is_read_and_the_cut_reported(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    make: Callable[[bytes], bytes],
    readable: Callable[[bytes], bytes],
) -> None:
    whole = make(TEXT)
    cut = whole[: len(whole) * 3 // 4]
    path = tmp_path / name
    path.write_bytes(cut)
    prefix = readable(cut)[: len(TEXT)]
    complete = prefix.count(b"\n")
    assert LINES // 2 < complete < LINES

    with caplog.at_level(logging.WARNING, logger="exposure"):
        records, problems, ends, rejected = _summary(path)

    assert records == complete  # not one line lost in a read buffer or a block in flight
    assert "truncated" in problems
    (end,) = ends
    assert end.problem == "truncated" and end.records == complete
    # The line the cut went through is counted, never read as a shorter password.
    partial = not prefix.endswith(b"\n")
    assert [r.reason for r in rejected] == (["truncated"] if partial else [])
    assert end.lines == complete + partial
    assert any("truncated" in r.getMessage() and name in r.getMessage() for r in caplog.records)


def test_a_complete_file_reports_no_problem(tmp_path: Path) -> None:
    text = TEXT[: TEXT.index(b"\n", 100_000) + 1]
    path = tmp_path / "list.txt.gz"
    path.write_bytes(gzip.compress(text))
    records, problems, ends, rejected = _summary(path)
    assert problems == [] and rejected == []
    assert ends[0].problem is None and records == text.count(b"\n")
