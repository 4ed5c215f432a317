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

Beside each ratio, the evidence that does not depend on how loaded the machine is: the cores
the process kept busy (process CPU time over wall time: 2.0 means two verifications ran side by
side all along; 1.0 with two workers would mean a lock, such as the GIL, serialised them), and
the CPU one verification cost in the pool against alone (above 1.0: the two compete for memory
bandwidth or caches), and the longest pause of a Python thread while a verification runs
(short: the library releases the GIL; as long as the verification: it holds it). On a machine
shared with other work the ratio falls while these stay.

    python bench/password_schemes.py [--seconds 3] [--rounds 3] [--min-ratio 1.8] [--only bcrypt]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import argon2
import bcrypt
from passlib import hash as passlib_hash

from exposure.passwords import sha_crypt
from exposure.passwords.verifier import PasswordVerifier
from exposure.passwords.verifier import _verify_one as verify_one


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


@dataclass(frozen=True)
class Timing:
    """One run: wall seconds, and the CPU seconds the whole process used meanwhile (every
    thread): ``cpu / wall`` is how many cores were busy on average, which shows whether the
    pool's verifications really ran side by side, however loaded the machine is."""

    wall: float
    cpu: float
    workers: int

    @property
    def cores(self) -> float:
        return self.cpu / self.wall


async def _run(pairs: list[tuple[str, str]], expected: list[bool], workers: int | None) -> Timing:
    with PasswordVerifier(workers=workers) as verifier:
        cpu, started = time.process_time(), time.perf_counter()
        results = await verifier.verify_many(pairs)
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    if results != expected:
        raise SystemExit("wrong verification results: the benchmark would be measuring nothing")
    return Timing(elapsed, used, verifier.workers)


def _gil_gap(pair: tuple[str, str], rounds: int) -> tuple[float, float]:
    """(longest pause of a Python thread ticking every 2 ms while another verifies, the
    longest verification): a verification that held the GIL would pause the ticker for as long
    as itself; one that releases it pauses it for a scheduling slice at most."""
    gaps: list[float] = []
    longest = 0.0
    stop = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            verify_one(*pair)
            longest = max(longest, time.perf_counter() - started)
    finally:
        stop.set()
        ticker.join()
    return max(gaps), longest


def _pairs(scheme: Scheme, seconds: float) -> tuple[list[tuple[str, str]], list[bool]]:
    """Enough pairs for about ``seconds`` of single-thread work (at least 16, even)."""
    probe_password = secrets.token_urlsafe(12)
    probe = [(scheme.make(probe_password), probe_password)] * 2
    each = asyncio.run(_run(probe, [True, True], workers=1)).wall
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
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    if autogroup.exists() and autogroup.read_text().strip() == "1":
        # The kernel shares the CPU fairly between sessions, not threads: on a busy machine the
        # pool's two threads together get about one session's share ("cores busy" shows it).
        print("sched_autogroup_enabled=1: under load, a process gets its session's share")
    failed: list[str] = []
    rows: list[str] = []
    for scheme in SCHEMES:
        if args.only and scheme.name not in args.only:
            continue
        pairs, expected = _pairs(scheme, args.seconds)
        singles, pools = [], []
        for _ in range(args.rounds):
            singles.append(asyncio.run(_run(pairs, expected, workers=1)))
            pools.append(asyncio.run(_run(pairs, expected, workers=args.workers)))
        gap, longest = _gil_gap(pairs[0], rounds=3)
        single = min(singles, key=lambda t: t.wall)
        pool = min(pools, key=lambda t: t.wall)
        s_rate, p_rate = len(pairs) / single.wall, len(pairs) / pool.wall
        ratio = p_rate / s_rate
        verdict = "OK" if ratio >= args.min_ratio else "FAIL"
        if verdict == "FAIL":
            failed.append(scheme.name)
        # Evidence of parallelism that load cannot fake: cores busy during the pool run, and
        # the CPU one verification costs in the pool against alone (contention for memory
        # bandwidth or caches shows there, not in the GIL).
        rows.append(
            f"{scheme.name:14} {scheme.params:40} {len(pairs):4} pairs  single {s_rate:8.2f}/s"
            f"  pool({pool.workers}) {p_rate:8.2f}/s  {ratio:5.2f}x  {verdict}"
            f"  cores busy: single {single.cores:4.2f}, pool {pool.cores:4.2f}"
            f"  cpu per verification pool/single {pool.cpu / single.cpu:4.2f}"
            f"  GIL: a Python thread paused at most {gap * 1000:.0f} ms during"
            f" {longest * 1000:.0f} ms verifications"
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
