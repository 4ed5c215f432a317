"""Per-file decoding: encodings, terminators, problem lines, bounded memory. Invented data only."""

from __future__ import annotations

import io
import random
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from exposure.dumps.decode import DecodedLines, LineProblem, TextBlock, decode_lines

TOO_LONG, UNDECODABLE, BINARY = LineProblem.TOO_LONG, LineProblem.UNDECODABLE, LineProblem.BINARY


def decode(data: bytes) -> tuple[list[tuple[int, str | LineProblem]], str]:
    lines = DecodedLines(io.BytesIO(data))
    return list(lines), lines.encoding


def test_utf8_terminators_strip_exactly_one_and_nothing_else() -> None:
    data = b"taro@example.com:pw \r\nABCD1234:Momiji!77\n\nx:pw\r\r\nlast:no-newline "
    assert decode(data) == (
        [
            (1, "taro@example.com:pw "),
            (2, "ABCD1234:Momiji!77"),
            (3, ""),
            (4, "x:pw\r"),
            (5, "last:no-newline "),
        ],
        "utf-8",
    )


def test_lone_cr_is_content_not_a_line_break() -> None:
    assert decode(b"a:b\rc:d\n") == ([(1, "a:b\rc:d")], "utf-8")


def test_utf8_bom_is_removed_and_recorded() -> None:
    data = "\ufeffハナコ@example.jp:パス\n".encode()
    assert decode(data) == ([(1, "ハナコ@example.jp:パス")], "utf-8-sig")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_yields_real_text_not_nul_padded(codec: str) -> None:
    text = "URL: https://trade.sec.example/login\r\nUsername: ABCD1234\r\nPassword: 桜#2025\r\n"
    data = "\ufeff".encode(codec) + text.encode(codec)
    assert decode(data) == (
        [
            (1, "URL: https://trade.sec.example/login"),
            (2, "Username: ABCD1234"),
            (3, "Password: 桜#2025"),
        ],
        codec,
    )


def test_bomless_utf16_is_sniffed_from_its_nul_pattern() -> None:
    data = ("taro@example.com:Sakura#2025\n" * 10).encode("utf-16-le")
    lines, encoding = decode(data)
    assert encoding == "utf-16-le"
    assert lines[0] == (1, "taro@example.com:Sakura#2025")
    assert len(lines) == 10


def test_utf16_damage_is_undecodable_not_replaced() -> None:
    good = "a:b\n".encode("utf-16-le")
    lone = "x\ud800y\n".encode("utf-16-le", "surrogatepass")
    data = codec_bom("utf-16-le") + good + lone + good + b"\x41"  # odd trailing byte
    assert decode(data)[0] == [(1, "a:b"), (2, UNDECODABLE), (3, "a:b"), (4, UNDECODABLE)]


def codec_bom(codec: str) -> bytes:
    return "\ufeff".encode(codec)


def test_cp932_lines_decode_as_cp932_not_shift_jis() -> None:
    data = b"ABCD1234:\x81\x7c1\n" + "山田@example.jp:パスワード\n".encode("cp932")
    lines, encoding = decode(data)
    assert lines == [(1, "ABCD1234:\uff0d1"), (2, "山田@example.jp:パスワード")]
    assert lines[0][1] != "ABCD1234:\u22121"  # what shift_jis would have made of 81 7C
    assert encoding == "cp932"


def test_mixed_utf8_and_cp932_lines_are_decoded_per_line() -> None:
    data = (
        "鈴木@example.jp:すずき\n".encode()
        + "佐藤@example.jp:さとう\n".encode("cp932")
        + b"plain@example.com:pw\n"
        + "高橋@example.jp:たかはし\n".encode()
    )
    lines, encoding = decode(data)
    assert [text for _, text in lines] == [
        "鈴木@example.jp:すずき",
        "佐藤@example.jp:さとう",
        "plain@example.com:pw",
        "高橋@example.jp:たかはし",
    ]
    assert encoding == "utf-8+cp932"


def test_binary_garbage_and_nul_lines_are_reported_never_dropped() -> None:
    data = b"ok1:pw\n\xff\xfe\xfd\x80\x00\x01\nnul\x00inside:pw\n\x85\x01\x02garbage\nok2:pw\n"
    lines, encoding = decode(data)
    assert lines == [(1, "ok1:pw"), (2, BINARY), (3, BINARY), (4, UNDECODABLE), (5, "ok2:pw")]
    assert encoding == "utf-8"


def test_two_mib_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"first:pw\n" + b"A" * (2 << 20) + b"\nafter:pw\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            lines = list(decode_lines(stream, max_line_bytes=1 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == [(1, "first:pw"), (2, TOO_LONG), (3, "after:pw")]
    assert peak < 1.6 * (1 << 20)  # the 2 MiB line was never held whole


def test_progress_counts_every_raw_byte_and_problems_arrive_in_order() -> None:
    data = b"a:1\n" + b"x" * 50 + b"\nb:2\n\xff\xfe\nc:3"
    seen: list[int] = []
    lines = decode_lines(io.BytesIO(data), max_line_bytes=40, on_read=seen.append)
    log: list[tuple[int, str]] = []
    for line_no, text in lines.texts(lambda n, problem: log.append((n, problem.value))):
        log.append((line_no, text))
    assert log == [(1, "a:1"), (2, "too_long"), (3, "b:2"), (4, "undecodable"), (5, "c:3")]
    assert sum(seen) == lines.bytes_read == len(data)
    assert lines.lines == 5
    with pytest.raises(RuntimeError):
        list(lines)


_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80\ue000-\uf8ff]")


def reference(data: bytes, limit: int) -> list[tuple[int, str | LineProblem]]:
    """The contract, one line at a time (slow and obvious)."""
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    out: list[tuple[int, str | LineProblem]] = []
    for line_no, raw in enumerate(pieces, 1):
        if len(raw) > limit:
            out.append((line_no, TOO_LONG))
            continue
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = raw.decode("cp932")
            except UnicodeDecodeError:
                out.append((line_no, UNDECODABLE))
                continue
            if "\x00" not in text and _NOT_TEXT.search(text):
                out.append((line_no, UNDECODABLE))
                continue
        out.append((line_no, BINARY if "\x00" in text else text))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_chunk_boundaries_never_change_the_result(seed: int) -> None:
    rng = random.Random(seed)
    makers: list[Callable[[], bytes]] = [
        lambda: b"user%d@example.com:pw%d" % (rng.randrange(999), rng.randrange(999)),
        lambda: "山田@example.jp:パス".encode(),
        lambda: "佐藤:ｻﾄｳ－１".encode("cp932"),
        lambda: b"x" * rng.randrange(36, 44),  # around the limit, across chunk edges
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))),
        lambda: b"",
        lambda: b"tab\there:\r",
    ]
    body = b"".join(rng.choice(makers)() + rng.choice([b"\n", b"\r\n"]) for _ in range(400))
    data = b"warm-up line without surprises\n" * 40 + body + rng.choice([b"", b"tail:pw"])
    expected = reference(data, 40)
    for chunk in (1, 2, 3, 7, 64, 4096):
        lines = DecodedLines(io.BytesIO(data), max_line_bytes=40, chunk_bytes=chunk)
        assert list(lines) == expected, chunk


@pytest.mark.parametrize("seed", range(4))
def test_text_blocks_hold_exactly_the_lines(seed: int) -> None:
    """Handed over undecoded (a native parser reads the member), each TextBlock is a range of
    the chunk read that holds the very lines the line-by-line decoder yields, numbered alike;
    the lines no block can carry (not UTF-8, NUL, too long) come singly as before."""
    rng = random.Random(seed)
    makers: list[Callable[[], bytes]] = [
        lambda: b"user%d@example.com:pw%d" % (rng.randrange(999), rng.randrange(999)),
        lambda: "山田@example.jp:パス".encode(),
        lambda: "佐藤:ｻﾄｳ－１".encode("cp932"),
        lambda: b"nul\x00inside",
        lambda: b"x" * rng.randrange(36, 44),
        lambda: b"",
    ]
    body = b"".join(rng.choice(makers)() + rng.choice([b"\n", b"\r\n"]) for _ in range(600))
    data = b"head line\n" * 5 + body + rng.choice([b"", b"tail:pw"])
    expected = list(DecodedLines(io.BytesIO(data), max_line_bytes=40))
    lines = DecodedLines(io.BytesIO(data), max_line_bytes=40)
    got: list[tuple[int, str | LineProblem]] = []
    blocks = 0
    for item in lines._run(None):  # what a native parser receives
        if isinstance(item, TextBlock):
            blocks += 1
            text = item.data[item.start : item.end].decode("utf-8")
            texts = text.replace("\r\n", "\n").split("\n")[:-1]
            assert len(texts) == item.lines
            got.extend(enumerate(texts, item.first_line_no))
        else:
            got.append(item)
        lines.text_blocks = True  # from the second chunk on, as the reader switches it
    assert blocks > 10
    assert got == expected
