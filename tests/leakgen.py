"""Invented customers and leaked dumps for the ingestion tests. No real leak data anywhere.

Every identifier and password here is made up and distinctive, so a scan of the database, the
logs and the command output for them cannot hit by accident.
"""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import argon2

# Cheap parameters keep the suite fast; one test also uses the library defaults.
HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
BROKER = "mirai-sec.co.jp"
CURRENT = "Sakura#2025-current"
OLD = "Momiji!77-retired"
HEADER = "customer_id,email,login_id,phone,password_hash\n"


@dataclass(frozen=True)
class Case:
    """One customer, the dump line(s) that expose them, and what must come out."""

    customer_id: str
    email: str
    login_id: str
    enrolled_password: str | None
    lines: tuple[str, ...]
    action: str
    status: str


def policy_cases() -> list[Case]:
    """Every row and column of the contract's policy table, plus the variant cap and traps."""
    b = f"https://trade.{BROKER}/login"
    evil = f"https://{BROKER}.evil.example/login"
    return [
        Case(
            "P01",
            "kotori.live.b@example.jp",
            "KLB00001",
            CURRENT,
            (f"{b}:KLB00001:{CURRENT}",),
            "force_reset",
            "live",
        ),
        Case(
            "P02",
            "kotori.live.o@example.jp",
            "KLO00002",
            CURRENT,
            (f"Kotori.Live.O@EXAMPLE.jp:{CURRENT}",),
            "force_reset",
            "live",
        ),
        Case(
            "P03",
            "umeko.unknown.b@example.jp",
            "UUB00003",
            None,
            (f"{b}:umeko.unknown.b@example.jp:{OLD}",),
            "force_reset",
            "unknown",
        ),
        Case(
            "P04",
            "umeko.unknown.o@example.jp",
            "UUO00004",
            None,
            (f"umeko.unknown.o@example.jp;{OLD}",),
            "notify",
            "unknown",
        ),
        Case(
            "P05",
            "azami.absent.o@example.jp",
            "AAO00005",
            CURRENT,
            ("azami.absent.o@example.jp",),
            "none",
            "absent",
        ),
        Case(
            "P06",
            "sumire.stale.b@example.jp",
            "SSB00006",
            CURRENT,
            (f"{b}:SSB00006:{OLD}",),
            "notify",
            "stale",
        ),
        Case(
            "P07",
            "sumire.stale.o@example.jp",
            "SSO00007",
            CURRENT,
            (f"sumire.stale.o@example.jp|{OLD}",),
            "notify",
            "stale",
        ),
        # Gmail variant only (dots): capped at notify unless live.
        Case(
            "P08",
            "hinata.variant@gmail.com",
            "HVG00008",
            None,
            (f"{b}:hinatavariant@gmail.com:{OLD}",),
            "notify",
            "unknown",
        ),
        Case(
            "P09",
            "hotaru.variant@gmail.com",
            "HVL00009",
            CURRENT,
            (f"hotaruvariant+kabu@googlemail.com:{CURRENT}",),
            "force_reset",
            "live",
        ),
        # A hash in the password column is never verified as the password.
        Case(
            "P10",
            "hashi.hashed@example.jp",
            "HHX00010",
            CURRENT,
            ("hashi.hashed@example.jp:5f4dcc3b5aa765d61d8327deb882cf99",),
            "none",
            "absent",
        ),
        # A prefix trick is not a broker site.
        Case(
            "P11",
            "kitsune.evil@example.jp",
            "KEV00011",
            None,
            (f"{evil}:KEV00011:{OLD}",),
            "notify",
            "unknown",
        ),
        # Full-width login ID with a look-alike hyphen.
        Case(
            "P12",
            "zenkaku.id@example.jp",
            "ZK-00012",
            CURRENT,
            (f"ＺＫ－０００１２:{CURRENT}",),
            "force_reset",
            "live",
        ),
    ]


def stealer_case_customer() -> Case:
    """A stealer-log machine: a broker password block with NOT_SAVED, and a broker cookie."""
    return Case(
        "S01", "shinobu.stealer@example.jp", "SST00101", CURRENT, (), "force_reset", "absent"
    )


def enrolment_csv(cases: list[Case]) -> str:
    rows = []
    for case in cases:
        phc = HASHER.hash(case.enrolled_password) if case.enrolled_password else ""
        rows.append(f"{case.customer_id},{case.email},{case.login_id},,{phc}")
    return HEADER + "\n".join(rows) + "\n"


def stealer_zip(path: Path, login: str) -> None:
    """A stealer-log archive: one machine folder with passwords, cookies and system info."""
    machine = "JP[A1B2C3D4E5] [2025-04-01T10-22-31]"
    passwords = (
        "Seller: @invented_seller\n"
        "===============\n"
        f"URL: https://trade.{BROKER}/member/login.do\n"
        f"Username: {login}\n"
        "Password: NOT_SAVED\n"
        "Application: Google_[Chrome]_Default\n"
        "===============\n"
        "URL: https://shop.example.com/\n"
        "Username: someone.else@example.org\n"
        "Password: unrelated-pw\n"
    )
    cookies = (
        f".trade.{BROKER}\tTRUE\t/\tTRUE\t1767225600\tSESSIONID\tinvented-session-value\n"
        ".shop.example.com\tTRUE\t/\tFALSE\t1767225600\tcart\tabc\n"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{machine}/Passwords.txt", passwords)
        archive.writestr(f"{machine}/Cookies/Chrome_Default.txt", cookies)
        archive.writestr(f"{machine}/UserInformation.txt", "Country: JP\nOS: Windows 10\n")


def write_everything(folder: Path, cases: list[Case]) -> None:
    """The policy lines spread over formats, encodings and containers, plus noise and traps."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [line for case in cases for line in case.lines]
    half = len(lines) // 2
    noise = [
        "# 証券口座リスト 2025",
        "<html><body>free combos</body></html>",
        "",
    ]
    (folder / "combo_utf8.txt").write_text("\n".join(noise + lines[:half]) + "\n", "utf-8")
    # UTF-16 LE with BOM: read naively it yields zero credentials.
    (folder / "combo_utf16.txt").write_bytes("\r\n".join(lines[half:]).encode("utf-16"))
    # cp932 with a full-width hyphen byte pair (81 7C), gzipped inside a tar.
    cp932 = "ＺＫ－００１２:dummy\nnobody.at.all@example.jp:xx\n".encode("cp932")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/cp932_list.txt")
        info.size = len(cp932)
        tar.addfile(info, io.BytesIO(cp932))
    (folder / "bundle.tar.gz").write_bytes(buffer.getvalue())
    (folder / "records.jsonl.bz2").write_bytes(
        bz2.compress(b'{"email": "nobody.json@example.jp", "password": "x"}\n{broken\n')
    )
    (folder / "dump.csv.gz").write_bytes(
        gzip.compress('メールアドレス,パスワード\nnobody.csv@example.jp,"a,b"\n'.encode())
    )
    (folder / "corrupt.zip").write_bytes(b"PK\x03\x04not really a zip")
