"""Customers enrolled with every accepted hash scheme, then a dump ingested, on real SQLite and
PostgreSQL: each is ``live`` or ``stale`` as it should be; a refused hash (MD5) enrols the
identifiers, is counted, never stored, and its customer is ``unknown``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2
import bcrypt
from argon2.low_level import Type
from django.conf import settings as django_settings
from passlib import hash as passlib_hash

from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_enrolment_store import _dump_everything
from tests.leakgen import CURRENT, HEADER, OLD

if not django_settings.configured:
    django_settings.configure()
from django.contrib.auth import hashers as django_hashers  # needs the settings first

MD5 = "5f4dcc3b5aa765d61d8327deb882cf99"  # md5("password"), as a legacy export would hold it


def _django(hasher: django_hashers.BasePasswordHasher, **params: int) -> Callable[[str], str]:
    return lambda password: str(hasher.encode(password, hasher.salt(), **params))


SCHEMES: dict[str, Callable[[str], str]] = {
    "argon2id": argon2.PasswordHasher(1, 64, 2).hash,
    "argon2i": argon2.PasswordHasher(1, 64, 1, type=Type.I).hash,
    "argon2d": argon2.PasswordHasher(1, 64, 1, type=Type.D).hash,
    "bcrypt2b": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode(),
    "bcrypt2y": lambda p: "$2y$" + bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()[4:],
    "scrypt": passlib_hash.scrypt.using(rounds=8).hash,
    "djscrypt": _django(django_hashers.ScryptPasswordHasher(), n=1024, r=8, p=1),
    "pbkdf2s256": passlib_hash.pbkdf2_sha256.using(rounds=1000).hash,
    "pbkdf2s512": passlib_hash.pbkdf2_sha512.using(rounds=1000).hash,
    "djpbkdf2": _django(django_hashers.PBKDF2PasswordHasher(), iterations=1000),
    "sha256crypt": passlib_hash.sha256_crypt.using(rounds=1000).hash,
    "sha512crypt": passlib_hash.sha512_crypt.using(rounds=5000).hash,
}


def _exposures(env: dict[str, str], cwd: Path) -> dict[str, dict[str, Any]]:
    out = run_cli("exposures", "--format", "jsonl", env=env, cwd=cwd).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return {row["customer_id"]: row for row in rows}


async def test_every_scheme_live_or_stale_and_a_refused_hash_still_monitored(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    lines, dump = [HEADER], []
    for name, make in SCHEMES.items():
        enrolled = make(CURRENT)
        for status in ("live", "stale"):
            email = f"{name}.{status}@example.jp"
            lines.append(f'{name}-{status},{email},,,"{enrolled}"\n')
            dump.append(f"{email}:{CURRENT if status == 'live' else OLD}\n")
    lines.append(f"legacy-md5,legacy@example.jp,LEGACY01,,{MD5}\n")
    dump.append(f"legacy@example.jp:{CURRENT}\n")
    (tmp_path / "customers.csv").write_text("".join(lines), "utf-8")
    (tmp_path / "dump.txt").write_text("".join(dump), "utf-8")

    enrolled = json.loads(
        run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path).stdout
    )
    assert enrolled["rejected"] == 0
    assert enrolled["customers"] == 2 * len(SCHEMES) + 1
    assert enrolled["identifiers"] == {"email": 2 * len(SCHEMES) + 1, "login_id": 1}
    assert enrolled["hashes_refused"] == {"unsalted_fast_hash": 1}
    assert enrolled["hashes_refused_rows"] == [{"line": len(lines), "reason": "unsalted_fast_hash"}]
    assert list(enrolled["hash_refusal_help"]) == ["unsalted_fast_hash"]  # the reasons seen
    assert "stolen monitor database" in enrolled["hash_refusal_help"]["unsalted_fast_hash"]

    summary = json.loads(
        run_cli("ingest", str(tmp_path / "dump.txt"), env=env, cwd=tmp_path).stdout
    )
    assert summary["matched_records"] == len(dump)
    assert summary["verifications"] == 2 * len(SCHEMES)  # every pair once; MD5 never hashed

    exposures = _exposures(env, tmp_path)
    for name in SCHEMES:
        assert exposures[f"{name}-live"]["password_status"] == "live", name
        assert exposures[f"{name}-live"]["action"] == "force_reset", name
        assert exposures[f"{name}-stale"]["password_status"] == "stale", name
        assert exposures[f"{name}-stale"]["action"] == "notify", name
    legacy = exposures["legacy-md5"]
    assert (legacy["password_status"], legacy["action"]) == ("unknown", "notify")

    # The refused MD5 is nowhere in the database, in any case or encoding.
    stored = await _dump_everything(database_url, tmp_path)
    assert MD5.encode() not in stored.lower()
    assert bytes.fromhex(MD5) not in stored

    # Nothing new on a second ingest: each (customer, password, hash) was verified once, ever.
    again = json.loads(run_cli("ingest", str(tmp_path / "dump.txt"), env=env, cwd=tmp_path).stdout)
    assert again["verifications"] == 0 and again["events"] == 0


async def test_a_refused_hash_replaces_an_enrolled_one(database_url: str, tmp_path: Path) -> None:
    """The broker says the password changed to something we refuse: the old hash is out of
    date, so it is forgotten and the customer is judged ``unknown``, never ``stale``."""
    env = environment(database_url)
    csv = tmp_path / "customers.csv"
    csv.write_text(f"{HEADER}C1,switch@example.jp,,,{SCHEMES['bcrypt2b'](OLD)}\n", "utf-8")
    run_cli("enroll", str(csv), env=env, cwd=tmp_path)
    csv.write_text(f"{HEADER}C1,switch@example.jp,,,{MD5}\n", "utf-8")
    second = json.loads(run_cli("enroll", str(csv), env=env, cwd=tmp_path).stdout)
    assert second["hashes_refused"] == {"unsalted_fast_hash": 1}
    (tmp_path / "dump.txt").write_text(f"switch@example.jp:{CURRENT}\n", "utf-8")
    run_cli("ingest", str(tmp_path / "dump.txt"), env=env, cwd=tmp_path)
    assert _exposures(env, tmp_path)["C1"]["password_status"] == "unknown"
