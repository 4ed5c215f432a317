"""read_dump: event order, problems as events, stealer cookie attribution. Invented data only."""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import py7zr
import pytest

from exposure.dumps import reader
from exposure.dumps.containers import MemberProblem
from exposure.dumps.reader import (
    SESSION_FORMAT,
    DumpEvent,
    MemberEnd,
    MemberStart,
    machine_folder,
    read_dump,
)
from exposure.dumps.records import LeakRecord, LeakType, Rejected

BROKER = "trade.sec.example"


def is_broker(site: str) -> bool:
    return site == BROKER or site.endswith("." + BROKER)


def events(path: Path, **kwargs: Any) -> list[DumpEvent]:
    return list(read_dump(path, is_broker_site=is_broker, **kwargs))


def block(url: str, login: str, password: str) -> str:
    return f"URL: {url}\nUsername: {login}\nPassword: {password}\n===============\n"


def cookie(domain: str, name: str = "SESSIONID") -> str:
    return f"{domain}\tTRUE\t/\tTRUE\t0\t{name}\tv4lue\n"


def records(evs: list[DumpEvent]) -> list[tuple[str, str | None, LeakType, int, str | None]]:
    return [
        (e.login, e.password, e.leak_type, e.line_no, e.site)
        for e in evs
        if isinstance(e, LeakRecord)
    ]


def test_combo_file_events_and_decoder_rejections(tmp_path: Path) -> None:
    path = tmp_path / "combo.txt"
    path.write_bytes(
        b"taro.yamada@example.com:Sakura#2025\n"
        + b"A" * 100
        + b"\n\xff\xfe\x80\x01\nABCD1234:Momiji!77\r\n"
    )
    evs = events(path, max_line_bytes=64)
    assert evs[0] == MemberStart("combo.txt", "combo", "utf-8")
    assert records(evs) == [
        ("taro.yamada@example.com", "Sakura#2025", LeakType.COMBO, 1, None),
        ("ABCD1234", "Momiji!77", LeakType.COMBO, 4, None),
    ]
    assert [e for e in evs if isinstance(e, Rejected)] == [
        Rejected(2, "too_long"),
        Rejected(3, "undecodable"),
    ]
    end = evs[-1]
    assert isinstance(end, MemberEnd)
    assert (end.name, end.format, end.encoding, end.lines, end.records) == (
        "combo.txt",
        "combo",
        "utf-8",
        4,
        2,
    )
    assert dict(end.rejected) == {"too_long": 1, "undecodable": 1}


def test_utf16_stealer_log_is_not_silently_empty(tmp_path: Path) -> None:
    path = tmp_path / "Passwords.txt"
    text = block("https://trade.sec.example/login", "ABCD1234", "Sakura#2025")
    path.write_bytes(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    evs = events(path)
    assert records(evs) == [
        ("ABCD1234", "Sakura#2025", LeakType.STEALER_LOG, 1, "trade.sec.example"),
    ]
    end = evs[-1]
    assert isinstance(end, MemberEnd) and end.encoding == "utf-16-le"


def stealer_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        abc = "JP[ABC] [2025-04-01]/"
        archive.writestr(
            abc + "Passwords.txt",
            block("https://trade.sec.example/login", "ABCD1234", "Sakura#2025")
            + block("https://mail.example.com/", "taro@example.com", "Momiji!77"),
        )
        archive.writestr(
            abc + "Cookies/Chrome.txt",
            cookie(".example.org")
            + cookie(".trade.sec.example")
            + cookie("www.trade.sec.example", "other")
            + cookie(".trade.sec.example", "again"),
        )
        archive.writestr("JP[DEF] [2025-04-02]/Cookies/Edge.txt", cookie(".trade.sec.example"))
        archive.writestr(
            "JP[GHI] [2025-04-03]/Passwords.txt",
            block("https://shop.example.net/", "hanako@example.jp", "Fuji-San_3776"),
        )


def test_broker_cookies_are_attributed_to_the_logins_of_their_machine(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    stealer_zip(path)
    evs = events(path)
    starts = [(e.name, e.format) for e in evs if isinstance(e, MemberStart)]
    assert starts == [
        ("logs.zip!JP[ABC] [2025-04-01]/Cookies/Chrome.txt", "stealer_cookies"),
        ("logs.zip!JP[ABC] [2025-04-01]/Passwords.txt", "stealer_passwords"),
        ("logs.zip!JP[ABC] [2025-04-01]/", SESSION_FORMAT),
        ("logs.zip!JP[DEF] [2025-04-02]/Cookies/Edge.txt", "stealer_cookies"),
        ("logs.zip!JP[DEF] [2025-04-02]/", SESSION_FORMAT),
        ("logs.zip!JP[GHI] [2025-04-03]/Passwords.txt", "stealer_passwords"),
    ]
    cookies_end = next(e for e in evs if isinstance(e, MemberEnd) and e.name.endswith("Chrome.txt"))
    assert cookies_end.broker_cookies == 3
    assert dict(cookies_end.rejected) == {"cookie_not_broker": 1}
    # The session member of JP[ABC]: each (login, broker site) once, at the site's first line.
    session = evs[evs.index(MemberStart("logs.zip!JP[ABC] [2025-04-01]/", SESSION_FORMAT, None)) :]
    session = session[: next(i for i, e in enumerate(session) if isinstance(e, MemberEnd)) + 1]
    assert records(session) == [
        ("ABCD1234", None, LeakType.SESSION_COOKIE, 2, "trade.sec.example"),
        ("taro@example.com", None, LeakType.SESSION_COOKIE, 2, "trade.sec.example"),
        ("ABCD1234", None, LeakType.SESSION_COOKIE, 3, "www.trade.sec.example"),
        ("taro@example.com", None, LeakType.SESSION_COOKIE, 3, "www.trade.sec.example"),
    ]
    assert session[-1] == MemberEnd("logs.zip!JP[ABC] [2025-04-01]/", SESSION_FORMAT, "", 0, 4)
    # JP[DEF] has a broker cookie but no login: counted, visible, not attributed.
    unattributed = [e for e in evs if isinstance(e, MemberEnd) and e.name.endswith("02]/")]
    assert [dict(e.rejected) for e in unattributed] == [{"cookie_unattributed": 1}]
    # Nothing from one machine leaks onto another.
    assert all(r[0] != "hanako@example.jp" for r in records(evs) if r[2] is LeakType.SESSION_COOKIE)


def test_a_folder_of_logins_too_big_for_one_machine_is_not_attributed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_MAX_MACHINE_LOGINS", 1)
    path = tmp_path / "logs.zip"
    stealer_zip(path)
    evs = events(path)
    assert not [r for r in records(evs) if r[2] is LeakType.SESSION_COOKIE]
    session_end = next(e for e in evs if isinstance(e, MemberEnd) and e.name.endswith("01]/"))
    assert dict(session_end.rejected) == {"cookie_folder_too_large": 3}


def test_order_is_deterministic(tmp_path: Path) -> None:
    stealer_zip(tmp_path / "logs.zip")
    (tmp_path / "combo.txt").write_bytes(b"a@example.com:pw1\nb@example.com:pw2\n")
    first = events(tmp_path)
    assert first == events(tmp_path)
    assert len(first) > 20


def test_bad_members_are_events_and_the_rest_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a_corrupt.zip").write_bytes(b"PK\x03\x04" + os.urandom(200))
    noise = "".join(f"user{i}@example.com:{os.urandom(8).hex()}\n" for i in range(400))
    whole = gzip.compress(noise.encode())
    (tmp_path / "b_cut.txt.gz").write_bytes(whole[: len(whole) * 3 // 4])
    with py7zr.SevenZipFile(tmp_path / "c_locked.7z", "w", password="s3cret") as archive:
        archive.writestr(b"a@example.com:pw\n", "combo.txt")
    (tmp_path / "d_empty.txt").write_bytes(b"")
    (tmp_path / "e_garbage.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "f_good.txt").write_bytes(b"good@example.com:pw\n")
    evs = events(tmp_path)
    problems = [(e.name, e.reason) for e in evs if isinstance(e, MemberProblem)]
    assert problems == [
        ("a_corrupt.zip", "corrupt"),
        ("b_cut.txt.gz!b_cut.txt", "truncated"),
        ("c_locked.7z!combo.txt", "encrypted"),
        ("d_empty.txt", "empty"),
        ("e_garbage.bin", "unrecognised_format"),
    ]
    # The truncated member kept what it read, then its problem, then its end.
    cut = [e for e in evs if getattr(e, "name", "").startswith("b_cut")]
    assert isinstance(cut[0], MemberStart) and isinstance(cut[-1], MemberEnd)
    assert cut[-2] == MemberProblem("b_cut.txt.gz!b_cut.txt", "truncated")
    # Every complete line before the cut was delivered (nothing lost in a read buffer).
    prefix = zlib.decompressobj(wbits=31).decompress(whole[: len(whole) * 3 // 4])
    assert 0 < cut[-1].records == prefix.count(b"\n") < 400
    assert records(evs)[-1] == ("good@example.com", "pw", LeakType.COMBO, 1, None)


def test_format_override_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "list.dat"
    path.write_bytes(b"a@example.com:pw\nb@example.com:pw\n")
    with pytest.raises(ValueError, match="unknown dump format"):
        read_dump(path, format_override="excel", is_broker_site=is_broker)
    seen: list[int] = []
    evs = events(path, format_override="combo", progress=seen.append)
    assert evs[0] == MemberStart("list.dat", "combo", "utf-8")
    assert len(records(evs)) == 2
    assert sum(seen) == path.stat().st_size


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("logs.zip!JP[ABC] [2025-04-01]/Passwords.txt", "logs.zip!JP[ABC] [2025-04-01]/"),
        ("logs.zip!JP[ABC] [2025-04-01]/Cookies/Chrome.txt", "logs.zip!JP[ABC] [2025-04-01]/"),
        ("logs.zip!batch/JP[X]/Cookies/Edge.txt", "logs.zip!batch/JP[X]/"),
        ("JP[X].zip!Passwords.txt", "JP[X].zip!"),
        ("JP[X].zip!Cookies.zip!Chrome.txt", "JP[X].zip!"),
        ("Passwords.txt", ""),
    ],
)
def test_machine_folder(name: str, folder: str) -> None:
    assert machine_folder(name) == folder
