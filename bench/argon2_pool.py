"""Benchmark: PasswordVerifier's worker pool against one thread verifying sequentially.

Makes ``--count`` argon2 hashes with argon2-cffi's defaults (``PasswordHasher()``), then times
the same (hash, password) pairs three ways in one run:

* ``single-thread``: ``PasswordVerifier(workers=1)``, one thread computing every lane itself.
  This is the baseline the ratio gate uses: the pool's gain from using more cores.
* ``library``: a plain loop over ``PasswordHasher().verify`` on one Python thread. Informative:
  argon2-cffi's bindings run the ``p=4`` lanes of each call on threads of their own, so this
  "sequential" baseline already uses more than one core.
* ``pool``: ``PasswordVerifier().verify_many`` with one worker per available CPU.

The three runs are interleaved for ``--rounds`` rounds and each keeps its best (fastest) round,
as ``timeit`` does: other processes on the machine can only slow a run down, never speed it up.
Prints verifications/s for each and the ratios; exits 1 if pool / baseline is below
``--min-ratio`` (default 1.8, the target on 2 cores).

    python bench/argon2_pool.py [--count 200] [--rounds 3] [--min-ratio 1.8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from importlib.metadata import version

import argon2

from exposure.passwords.verifier import PasswordVerifier


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _time_library(pairs: list[tuple[str, str]]) -> float:
    hasher = argon2.PasswordHasher()
    started = time.perf_counter()
    for phc, password in pairs:
        hasher.verify(phc, password)  # raises on mismatch: every pair must verify
    return time.perf_counter() - started


async def _time_verifier(pairs: list[tuple[str, str]], workers: int | None) -> tuple[float, int]:
    with PasswordVerifier(workers=workers) as verifier:
        started = time.perf_counter()
        results = await verifier.verify_many(pairs)
        elapsed = time.perf_counter() - started
    if not all(results):
        raise SystemExit("a pair failed to verify: the benchmark would be measuring nothing")
    return elapsed, verifier.workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=200, help="hashes to verify (200)")
    parser.add_argument("--min-ratio", type=float, default=1.8, help="gate: pool / baseline")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, best kept")
    parser.add_argument("--workers", type=int, default=None, help="pool size (CPUs available)")
    parser.add_argument(
        "--baseline",
        choices=("single-thread", "library"),
        default="single-thread",
        help="which sequential run the gate compares against",
    )
    args = parser.parse_args()

    hasher = argon2.PasswordHasher()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"argon2-cffi {version('argon2-cffi')}, defaults t={hasher.time_cost} "
        f"m={hasher.memory_cost} KiB p={hasher.parallelism}; CPUs available: {cpus}"
    )
    started = time.perf_counter()
    passwords = [secrets.token_urlsafe(12) for _ in range(args.count)]
    pairs = [(hasher.hash(password), password) for password in passwords]
    print(f"hashed {args.count} passwords in {time.perf_counter() - started:.1f}s")

    print(f"load average before: {_load()}")
    single = library = pool = float("inf")
    workers = 0
    for round_no in range(1, args.rounds + 1):
        s_time, _ = asyncio.run(_time_verifier(pairs, workers=1))
        l_time = _time_library(pairs)
        p_time, workers = asyncio.run(_time_verifier(pairs, workers=args.workers))
        print(
            f"round {round_no}: single-thread {args.count / s_time:6.2f}/s, library "
            f"{args.count / l_time:6.2f}/s, pool {args.count / p_time:6.2f}/s (load {_load()})"
        )
        single, library, pool = min(single, s_time), min(library, l_time), min(pool, p_time)

    rate = {
        "single-thread": args.count / single,
        "library": args.count / library,
        "pool": args.count / pool,
    }
    print(f"best of {args.rounds} rounds:")
    print(f"(a)  single-thread (PasswordVerifier workers=1): {rate['single-thread']:7.2f} verif/s")
    print(f"(a') library loop (PasswordHasher().verify):     {rate['library']:7.2f} verif/s")
    print(f"(b)  pool (PasswordVerifier workers={workers}):          {rate['pool']:7.2f} verif/s")
    ratio_single = rate["pool"] / rate["single-thread"]
    ratio_library = rate["pool"] / rate["library"]
    print(f"ratio pool / single-thread: {ratio_single:.2f}x")
    print(f"ratio pool / library loop:  {ratio_library:.2f}x")
    ratio = ratio_single if args.baseline == "single-thread" else ratio_library
    if ratio < args.min_ratio:
        print(f"FAIL: {ratio:.2f}x vs {args.baseline} is below --min-ratio {args.min_ratio}")
        return 1
    print(f"OK: {ratio:.2f}x vs {args.baseline} >= --min-ratio {args.min_ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
