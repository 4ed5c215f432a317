"""Benchmark: the verification pool against one thread, for every accepted hash scheme.

For each scheme, makes hashes with the scheme's reference library at the parameters a broker's
login system typically uses (each framework's default), then times the same (hash, password)
pairs two ways in one run:

* ``single-thread``: ``PasswordVerifier(workers=1)``, one thread verifying one pair after another
  (the baseline);
* ``pool``: ``PasswordVerifier()`` with one worker per available CPU.

Half the pairs are the right password and half a wrong one, and the results are checked, so a
scheme that silently failed would not be measured. Each scheme gets about ``--seconds`` of
single-thread work per round; the two runs are interleaved for ``--rounds`` rounds and each
keeps its best round (other processes can only slow a run down). Prints verifications/s per
scheme and the ratio; exits 1 if any ratio is below ``--min-ratio`` (1.8, the target on 2 cores).

    python bench/password_schemes.py [--seconds 3] [--rounds 3] [--min-ratio 1.8] [--only bcrypt]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import argon2
import bcrypt
from passlib import hash as passlib_hash

from exposure.passwords import sha_crypt
from exposure.passwords.verifier import PasswordVerifier


@dataclass(frozen=True)
class Scheme:
    name: str
    params: str
    make: Callable[[str], str]


def _django_pbkdf2(password: str) -> str:
    # Django 5.x's PBKDF2PasswordHasher: 1,000,000 rounds (libpass writes the same format).
    return str(passlib_hash.django_pbkdf2_sha256.using(rounds=1_000_000).hash(password))


SCHEMES = [
    Scheme("argon2id", "argon2-cffi defaults t=3 m=64MiB p=4", argon2.PasswordHasher().hash),
    Scheme(
        "bcrypt",
        "cost 12",
        lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(12)).decode(),
    ),
    Scheme("scrypt", "passlib default ln=16 r=8 p=1", passlib_hash.scrypt.hash),
    Scheme("pbkdf2_sha256", "Django format, 1,000,000 rounds", _django_pbkdf2),
    Scheme(
        "pbkdf2_sha512",
        "passlib format, 210,000 rounds (OWASP)",
        passlib_hash.pbkdf2_sha512.using(rounds=210_000).hash,
    ),
    Scheme(
        "sha256_crypt",
        "535,000 rounds (passlib default)",
        passlib_hash.sha256_crypt.using(rounds=535_000).hash,
    ),
    Scheme(
        "sha512_crypt",
        "5,000 rounds (glibc, /etc/shadow)",
        passlib_hash.sha512_crypt.using(rounds=5000).hash,
    ),
]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _run(
    pairs: list[tuple[str, str]], expected: list[bool], workers: int | None
) -> tuple[float, int]:
    with PasswordVerifier(workers=workers) as verifier:
        started = time.perf_counter()
        results = await verifier.verify_many(pairs)
        elapsed = time.perf_counter() - started
    if results != expected:
        raise SystemExit("wrong verification results: the benchmark would be measuring nothing")
    return elapsed, verifier.workers


def _pairs(scheme: Scheme, seconds: float) -> tuple[list[tuple[str, str]], list[bool]]:
    """Enough pairs for about ``seconds`` of single-thread work (at least 16, even)."""
    probe_password = secrets.token_urlsafe(12)
    probe = [(scheme.make(probe_password), probe_password)] * 2
    each, _ = asyncio.run(_run(probe, [True, True], workers=1))
    count = max(16, min(400, round(seconds / (each / 2))))
    count += count % 2
    pairs, expected = [], []
    for index in range(count):
        password = secrets.token_urlsafe(12)
        right = index % 2 == 0
        pairs.append((scheme.make(password), password if right else password + "!"))
        expected.append(right)
    return pairs, expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="single-thread work a round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    parser.add_argument("--min-ratio", type=float, default=1.8, help="gate: pool / baseline")
    parser.add_argument("--workers", type=int, default=None, help="pool size (CPUs available)")
    parser.add_argument("--only", action="append", help="scheme name(s) to run")
    args = parser.parse_args()

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPUs available: {cpus}; sha-crypt backend: {sha_crypt.backend()}")
    print(f"load average before: {_load()}")
    failed: list[str] = []
    rows: list[str] = []
    for scheme in SCHEMES:
        if args.only and scheme.name not in args.only:
            continue
        pairs, expected = _pairs(scheme, args.seconds)
        single = pool = float("inf")
        workers = 0
        for _ in range(args.rounds):
            s_time, _ = asyncio.run(_run(pairs, expected, workers=1))
            p_time, workers = asyncio.run(_run(pairs, expected, workers=args.workers))
            single, pool = min(single, s_time), min(pool, p_time)
        s_rate, p_rate = len(pairs) / single, len(pairs) / pool
        ratio = p_rate / s_rate
        verdict = "OK" if ratio >= args.min_ratio else "FAIL"
        if verdict == "FAIL":
            failed.append(scheme.name)
        rows.append(
            f"{scheme.name:14} {scheme.params:40} {len(pairs):4} pairs  single {s_rate:8.2f}/s"
            f"  pool({workers}) {p_rate:8.2f}/s  {ratio:5.2f}x  {verdict}"
        )
        print(rows[-1], f"(load {_load()})", flush=True)
    print(f"best of {args.rounds} rounds, gate {args.min_ratio}x:")
    print("\n".join(rows))
    if failed:
        print(f"FAIL: below {args.min_ratio}x: {', '.join(failed)}")
        return 1
    print(f"OK: every scheme >= {args.min_ratio}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
