"""Walking folders and archives into members; every fixture is generated from invented values."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import py7zr
import pytest
import zstandard

from exposure.dumps.containers import (
    ArchiveLimits,
    Member,
    MemberError,
    MemberProblem,
    iter_members,
)

COMBO = b"taro.yamada@example.com:Sakura#2025\nABCD1234:Momiji!77\n"
PASSWORDS = b"URL: https://trade.sec.example/login\nUsername: ABCD1234\nPassword: Sakura#2025\n"
COOKIES = b".trade.sec.example\tTRUE\t/\tTRUE\t0\tSESSIONID\tx1y2z3\n"


def walk(path: Path, limits: ArchiveLimits | None = None) -> list[tuple[str, str, bytes | str]]:
    """("member", name, content) / ("error", name, reason) / ("problem", name, reason)."""
    out: list[tuple[str, str, bytes | str]] = []
    for item in iter_members(path, limits):
        if isinstance(item, MemberProblem):
            out.append(("problem", item.name, item.reason))
            continue
        try:
            with item.open() as stream:
                chunks = []
                while data := stream.read(7000):
                    chunks.append(data)
            out.append(("member", item.name, b"".join(chunks)))
        except MemberError as exc:
            out.append(("error", item.name, exc.reason))
    return out


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_folder_walk_is_sorted_recursive_and_relative(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_bytes(b"two\n")
    (tmp_path / "a.txt").write_bytes(b"one\n")
    (tmp_path / "c.txt").write_bytes(b"three\n")
    os.symlink(tmp_path / "a.txt", tmp_path / "link.txt")
    result = walk(tmp_path)
    assert result == [
        ("member", "a.txt", b"one\n"),
        ("member", "b/2.txt", b"two\n"),
        ("member", "c.txt", b"three\n"),
        ("problem", "link.txt", "symlink"),
    ]
    assert walk(tmp_path) == result  # deterministic


def test_zip_stealer_tree_names_and_content(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    path.write_bytes(
        zip_bytes(
            {
                "JP[ABC] [2025-04-01]/Passwords.txt": PASSWORDS,
                "JP[ABC] [2025-04-01]/Cookies/Chrome.txt": COOKIES,
                "JP[ABC] [2025-04-01]/Autofills/": b"",
            }
        )
    )
    assert walk(path) == [
        ("member", "logs.zip!JP[ABC] [2025-04-01]/Cookies/Chrome.txt", COOKIES),
        ("member", "logs.zip!JP[ABC] [2025-04-01]/Passwords.txt", PASSWORDS),
    ]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".zst", zstandard.ZstdCompressor().compress),
    ],
)
def test_single_file_compressors(
    tmp_path: Path, suffix: str, compress: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / f"combo.txt{suffix}"
    path.write_bytes(compress(COMBO))
    assert walk(path) == [("member", f"combo.txt{suffix}!combo.txt", COMBO)]


def test_detection_is_by_magic_not_extension(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(gzip.compress(COMBO))
    (tmp_path / "fake.zip").write_bytes(b"just text, not a zip\n")
    (tmp_path / "plain.txt").write_bytes(COMBO)
    assert walk(tmp_path) == [
        ("member", "data.bin!data.bin", COMBO),
        ("problem", "fake.zip", "corrupt"),
        ("member", "plain.txt", COMBO),
    ]


def same(data: bytes) -> bytes:
    return data


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("dump.tar", same),
        ("dump.tar.gz", gzip.compress),
        ("dump.tgz", gzip.compress),
        ("dump.tar.bz2", bz2.compress),
        ("dump.tar.xz", lzma.compress),
        ("dump.tar.zst", zstandard.ZstdCompressor().compress),
    ],
)
def test_tar_variants(tmp_path: Path, name: str, compress: Callable[[bytes], bytes]) -> None:
    data = tar_bytes({"dir/a.txt": COMBO, "dir/b.txt": PASSWORDS})
    (tmp_path / name).write_bytes(compress(data))
    assert walk(tmp_path / name) == [
        ("member", f"{name}!dir/a.txt", COMBO),
        ("member", f"{name}!dir/b.txt", PASSWORDS),
    ]


def test_nested_zip_in_tar_gz_and_gz_in_zip(tmp_path: Path) -> None:
    inner = zip_bytes({"x.txt": COMBO, "deeper.txt.gz": gzip.compress(PASSWORDS)})
    path = tmp_path / "outer.tar.gz"
    path.write_bytes(gzip.compress(tar_bytes({"inner.zip": inner})))
    assert walk(path) == [
        ("member", "outer.tar.gz!inner.zip!deeper.txt.gz!deeper.txt", PASSWORDS),
        ("member", "outer.tar.gz!inner.zip!x.txt", COMBO),
    ]


def test_depth_limit(tmp_path: Path) -> None:
    inner = zip_bytes({"x.txt": COMBO})
    path = tmp_path / "a.zip"
    path.write_bytes(zip_bytes({"inner.zip": inner, "top.txt": COMBO}))
    assert walk(path, ArchiveLimits(max_depth=1)) == [
        ("problem", "a.zip!inner.zip", "too_deep"),
        ("member", "a.zip!top.txt", COMBO),
    ]


def test_7z_members_and_password_protected_7z(tmp_path: Path) -> None:
    plain = tmp_path / "plain.7z"
    with py7zr.SevenZipFile(plain, "w") as archive:
        archive.writestr(PASSWORDS, "JP[X] [ts]/Passwords.txt")
        archive.writestr(COMBO, "combo.txt")
    assert walk(plain) == [
        ("member", "plain.7z!JP[X] [ts]/Passwords.txt", PASSWORDS),
        ("member", "plain.7z!combo.txt", COMBO),
    ]
    locked = tmp_path / "locked.7z"
    with py7zr.SevenZipFile(locked, "w", password="s3cret") as archive:
        archive.writestr(COMBO, "combo.txt")
    hidden = tmp_path / "hidden.7z"
    with py7zr.SevenZipFile(hidden, "w", password="s3cret", header_encryption=True) as archive:
        archive.writestr(COMBO, "combo.txt")
    assert walk(locked) == [("problem", "locked.7z!combo.txt", "encrypted")]
    assert walk(hidden) == [("problem", "hidden.7z", "encrypted")]


def test_7z_nested_in_zip_is_spilled_and_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as archive:
        archive.writestr(COMBO, "c.txt")
    path = tmp_path / "a.zip"
    path.write_bytes(zip_bytes({"in.7z": buf.getvalue()}))
    assert walk(path) == [("member", "a.zip!in.7z!c.txt", COMBO)]


def test_zip_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    zeros = b"\0" * (4 << 20)
    path = tmp_path / "bomb.zip"
    path.write_bytes(zip_bytes({"zeros.txt": zeros, "ok.txt": COMBO}))
    limits = ArchiveLimits(max_ratio=50, ratio_grace_bytes=256 << 10)
    assert walk(path, limits) == [
        ("member", "bomb.zip!ok.txt", COMBO),
        ("error", "bomb.zip!zeros.txt", "bomb_ratio"),
    ]
    # Without the ratio limit, the absolute member limit still holds.
    sized = ArchiveLimits(max_member_bytes=1 << 20)
    assert ("error", "bomb.zip!zeros.txt", "too_large") in walk(path, sized)


def repeated_entry_zip(member: bytes, times: int, offset_shift: int = 0) -> bytes:
    """A zip whose central directory lists its one deflated member ``times`` times (each copy
    pointing ``offset_shift`` bytes further into the file): the non-recursive zip bomb."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", member)
    data = buf.getvalue()
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, eocd + 12)
    record = data[cd_offset : cd_offset + cd_size]
    copies = []
    for n in range(times):
        copy = bytearray(record)
        struct.pack_into("<I", copy, 42, n * offset_shift)  # the local header's offset
        copies.append(bytes(copy))
    central = b"".join(copies)
    end = bytearray(data[eocd:])
    struct.pack_into("<HHII", end, 8, times, times, len(central), cd_offset)
    return data[:cd_offset] + central + bytes(end)


def test_a_member_listed_a_thousand_times_is_refused_unread(tmp_path: Path) -> None:
    """One 16 MiB member (within every per-member limit) listed 1,000 times would expand to
    16 GiB: the archive is refused before a byte is inflated."""
    path = tmp_path / "bomb.zip"
    path.write_bytes(repeated_entry_zip(b"\0" * (16 << 20), 1000))
    assert path.stat().st_size < 200_000
    assert walk(path) == [("problem", "bomb.zip", "overlapping_entries")]
    # An entry whose header lies inside another's data is refused the same way.
    path.write_bytes(repeated_entry_zip(COMBO * 500, 2, offset_shift=40))
    assert walk(path) == [("problem", "bomb.zip", "overlapping_entries")]


def test_a_repeated_zip_entry_is_read_once(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
        archive.writestr("a.txt", COMBO)
        archive.writestr("a.txt", PASSWORDS)
        archive.writestr("b.txt", COOKIES)
    path = tmp_path / "twice.zip"
    path.write_bytes(buf.getvalue())
    assert walk(path) == [
        ("member", "twice.zip!a.txt", COMBO),
        ("problem", "twice.zip!a.txt", "duplicate_entry"),
        ("member", "twice.zip!b.txt", COOKIES),
    ]


def test_one_archives_entries_are_bounded_in_total(tmp_path: Path) -> None:
    """Each entry is within the member limit; together they pass the archive's limit, and
    the entries after that point are not read."""
    parts = {f"{n}.txt": os.urandom(20_000).hex().encode() for n in range(4)}  # 40,000 bytes each
    path = tmp_path / "many.zip"
    path.write_bytes(zip_bytes(parts))
    limits = ArchiveLimits(max_member_bytes=50_000, max_archive_bytes=100_000)
    assert walk(path, limits) == [
        ("member", "many.zip!0.txt", parts["0.txt"]),
        ("member", "many.zip!1.txt", parts["1.txt"]),
        ("error", "many.zip!2.txt", "archive_too_large"),
        ("problem", "many.zip", "archive_too_large"),
    ]
    # 7z members are spilled under the same limit.
    seven = tmp_path / "many.7z"
    with py7zr.SevenZipFile(seven, "w") as archive:
        for name, data in parts.items():
            archive.writestr(data, name)
    result = walk(seven, limits)
    assert ("problem", "many.7z", "archive_too_large") in result
    assert sum(kind == "member" for kind, _, _ in result) < 4


def test_gz_bomb_stops_before_reading_everything(tmp_path: Path) -> None:
    path = tmp_path / "zeros.txt.gz"
    path.write_bytes(gzip.compress(b"\0" * (8 << 20)))
    seen = 0
    walker = iter_members(path, ArchiveLimits(max_ratio=20, ratio_grace_bytes=1 << 20))
    member = next(walker)
    assert isinstance(member, Member)
    with member.open() as stream, pytest.raises(MemberError) as caught:
        while data := stream.read(4096):
            seen += len(data)
    assert caught.value.reason == "bomb_ratio"
    assert seen < 2 << 20


def test_total_budget_stops_the_walk(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / f"{index}.gz").write_bytes(gzip.compress(COMBO * 2000))
    result = walk(tmp_path, ArchiveLimits(max_total_bytes=len(COMBO) * 3000))
    assert result[0] == ("member", "0.gz!0", COMBO * 2000)
    assert result[1] == ("error", "1.gz!1", "total_too_large")
    assert result[-1] == ("problem", tmp_path.name, "total_too_large")
    assert len(result) == 3  # nothing after the budget ran out


def test_zip_path_traversal_and_symlink_are_reported_not_read(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("../evil.txt", COMBO)
        archive.writestr("/abs/evil.txt", COMBO)
        archive.writestr("ok.txt", COMBO)
        link = zipfile.ZipInfo("link.txt")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    path = tmp_path / "t.zip"
    path.write_bytes(buf.getvalue())
    assert walk(path) == [
        ("problem", "t.zip!../evil.txt", "path_traversal"),
        ("problem", "t.zip!/abs/evil.txt", "path_traversal"),
        ("problem", "t.zip!link.txt", "symlink"),
        ("member", "t.zip!ok.txt", COMBO),
    ]
    assert not (tmp_path.parent / "evil.txt").exists()


def test_tar_absolute_path_symlink_and_hardlink(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind in (("/etc/evil.txt", tarfile.REGTYPE), ("sym", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            info.size = len(COMBO) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(COMBO) if info.size else None)
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/shadow"
        tar.addfile(hard)
        good = tarfile.TarInfo("good.txt")
        good.size = len(COMBO)
        tar.addfile(good, io.BytesIO(COMBO))
    path = tmp_path / "t.tar"
    path.write_bytes(buf.getvalue())
    assert walk(path) == [
        ("problem", "t.tar!/etc/evil.txt", "path_traversal"),
        ("problem", "t.tar!sym", "symlink"),
        ("problem", "t.tar!hard", "symlink"),
        ("member", "t.tar!good.txt", COMBO),
    ]


def test_encrypted_zip_member_is_reported_and_others_read(tmp_path: Path) -> None:
    raw = bytearray(zip_bytes({"a.txt": COMBO, "b.txt": PASSWORDS}))
    # Hand-set the "encrypted" flag (bit 0) of a.txt in its local and central headers.
    raw[raw.find(b"PK\x03\x04") + 6] |= 1
    raw[raw.find(b"PK\x01\x02") + 8] |= 1
    path = tmp_path / "enc.zip"
    path.write_bytes(bytes(raw))
    assert walk(path) == [
        ("problem", "enc.zip!a.txt", "encrypted"),
        ("member", "enc.zip!b.txt", PASSWORDS),
    ]


def test_corrupt_and_truncated_archives_do_not_stop_the_folder(tmp_path: Path) -> None:
    noise = os.urandom(3000).hex().encode()  # incompressible: the cut falls after the head
    whole_gz = gzip.compress(noise)
    (tmp_path / "a_truncated.txt.gz").write_bytes(whole_gz[: len(whole_gz) // 2])
    whole_zip = zip_bytes({"x.txt": COMBO})
    (tmp_path / "b_truncated.zip").write_bytes(whole_zip[: len(whole_zip) - 30])
    (tmp_path / "c_corrupt.bz2").write_bytes(b"BZh91AY&SY" + b"\x00garbage" * 10)
    damaged = bytearray(zip_bytes({"y.txt": COMBO * 100}))
    damaged[60:70] = b"\xff" * 10  # inside the deflate stream
    (tmp_path / "d_damaged.zip").write_bytes(bytes(damaged))
    (tmp_path / "e_good.txt").write_bytes(COMBO)
    frame = zstandard.ZstdCompressor().compress(noise)
    whole_zst = frame + frame  # the cut falls in the second frame
    (tmp_path / "f_truncated.zst").write_bytes(whole_zst[:-10])
    result = walk(tmp_path)
    assert result == [
        ("error", "a_truncated.txt.gz!a_truncated.txt", "truncated"),
        ("problem", "b_truncated.zip", "corrupt"),
        ("problem", "c_corrupt.bz2", "corrupt"),
        ("problem", "d_damaged.zip!y.txt", "corrupt"),  # fails on its first block
        ("member", "e_good.txt", COMBO),
        ("error", "f_truncated.zst!f_truncated", "truncated"),
    ]


def test_truncated_tar_is_reported_even_at_a_header_boundary(tmp_path: Path) -> None:
    long = COMBO * 40  # 2160 bytes: five data blocks
    data = tar_bytes({"a.txt": long, "b.txt": COMBO})
    cut = 512 + 5 * 512  # a.txt complete; b.txt's header is missing
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:cut])
    assert walk(path) == [
        ("member", "cut.tar!a.txt", long),
        ("problem", "cut.tar", "truncated"),
    ]
    mid = tmp_path / "mid.tar"
    mid.write_bytes(data[: 512 + 1000])  # inside a.txt's data
    assert walk(mid) == [
        ("error", "mid.tar!a.txt", "truncated"),
        ("problem", "mid.tar", "truncated"),
    ]


def test_multi_frame_zstd_reads_every_frame(tmp_path: Path) -> None:
    cctx = zstandard.ZstdCompressor()
    path = tmp_path / "two.txt.zst"
    path.write_bytes(cctx.compress(COMBO) + cctx.compress(PASSWORDS))
    assert walk(path) == [("member", "two.txt.zst!two.txt", COMBO + PASSWORDS)]


def test_member_opens_once_and_only_while_current(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(COMBO)
    (tmp_path / "b.txt").write_bytes(COMBO)
    walker = iter_members(tmp_path)
    first = next(walker)
    assert isinstance(first, Member)
    with first.open() as stream:
        assert stream.read() == COMBO
    with pytest.raises(RuntimeError):
        first.open()
    second = next(walker)
    assert isinstance(second, Member)
    next(walker, None)
    with pytest.raises(RuntimeError):
        second.open()  # the walk has moved on: its stream is closed


def test_missing_path_and_cp932_zip_names(tmp_path: Path) -> None:
    assert walk(tmp_path / "nope.zip") == [("problem", "nope.zip", "unreadable")]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("placeholder.txt", COMBO)
    raw = buf.getvalue()
    # An old Japanese archiver: cp932 name bytes, no UTF-8 flag (same length as the ASCII name).
    cp932_name = "パスワード一覧.txt".encode("cp932")
    assert len(cp932_name) == len(b"placeholder.txt") + 3
    raw = raw.replace(b"placeholder.txt", cp932_name[:15])
    path = tmp_path / "jp.zip"
    path.write_bytes(raw)
    (name,) = [item.name for item in iter_members(path)]
    assert name == "jp.zip!" + cp932_name[:15].decode("cp932")


def test_py7zr_is_loaded_only_for_a_7z_archive(tmp_path: Path) -> None:
    # A tenth of a second of every ingest's start-up, for inputs that rarely hold a 7z.
    (tmp_path / "combo.txt").write_bytes(COMBO)
    probe = (
        "import sys; from pathlib import Path; import exposure.ingest.pipeline; "
        "from exposure.dumps.containers import iter_members; "
        f"[m for m in iter_members(Path({str(tmp_path / 'combo.txt')!r}))]; "
        "print('py7zr' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
