"""Ingestion benchmark, with grep as the baseline measured in the same run.

Case 1 (throughput): a combo list of N lines (default 10,000,000) against M enrolled customers
(default 1,000,000, an e-mail each, no password hashes); about 0.1% of the lines hit an
enrolled address, a third of the hits in upper case. Baseline: ``LC_ALL=C grep -F -i -c -f
enrolled_emails.txt dump.txt``. The same leaks as URL:login:password lines are timed too.
Targets (issue 18): combo ingest >= 3x grep's lines/s and >= 1.3x DuckDB's, ULP >= 2x grep's,
peak RSS < 1 GB; on PostgreSQL >= 2x grep's (bench/native_floor.py measures how close the C
scanner alone gets to those ratios). Every round times grep twice in a row: right after the
other commands it runs slower than straight after itself, so the targets are checked against
the second run (grep alone, at its best) and the first is printed beside it. Every timed
command runs --repeat times (default 3) and the ratios compare medians.

A DuckDB join over the same files (bench/duckdb_join.py: keyed SHA-256, 2 threads, building the
enrolled table included) is the second baseline, timed in the same rounds when duckdb is
installed (the dev extra). With EXPOSURE_TEST_POSTGRES_URL set, case 1 runs on PostgreSQL too
(a database copied from the enrolled one for every ingest), with the corpus fold.

Case 2 (argon2): 200 of the hit customers get argon2 hashes with argon2-cffi's defaults; the
verifications per second of ``exposure ingest`` are compared with one thread verifying the same
(hash, password) pairs in this process. Target >= 1.8x on 2 cores.

With ``--baseline CHECKOUT`` (an earlier commit, bootstrapped), that build's ingest is timed in
the same rounds, on the same files, and the speed-ups against it are printed.

    python bench/ingest_bench.py [--lines N] [--customers M] [--repeat R] [--workdir DIR]
                                 [--baseline CHECKOUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import argon2

PEPPER = "ab" * 32
DOMAINS = ("example.jp", "mail.example.com", "gmail.com", "docomo.ne.jp", "yahoo.co.jp")
SITE = "https://trade.mirai-sec.co.jp/login"
ARGON2_CUSTOMERS = 200


def email(n: int) -> str:
    return f"cust{n}.{n * 7919 % 100_003}@{DOMAINS[n % len(DOMAINS)]}"


def generate(work: Path, lines: int, customers: int) -> list[int]:
    """Write the enrolled list, the customer CSV and both dumps; return the hit customers."""
    rng = random.Random(2025)
    with (
        (work / "enrolled_emails.txt").open("w") as emails,
        (work / "customers.csv").open("w") as csv,
    ):
        csv.write("customer_id,email,login_id,phone,password_hash\n")
        for n in range(customers):
            address = email(n)
            emails.write(address + "\n")
            csv.write(f"C{n:08d},{address},,,\n")
    hits: list[int] = []
    with (work / "dump.txt").open("w") as combo, (work / "dump_ulp.txt").open("w") as ulp:
        for i in range(lines):
            if rng.random() < 0.001:
                n = rng.randrange(customers)
                hits.append(n)
                login = email(n).upper() if rng.random() < 1 / 3 else email(n)
            else:
                login = f"someone{rng.randrange(10**9)}@{DOMAINS[i % len(DOMAINS)]}"
            password = f"Pw{rng.randrange(10**9)}!x"
            combo.write(f"{login}:{password}\n")
            ulp.write(f"{SITE}:{login}:{password}\n")
    return hits


class Timed(NamedTuple):
    """One child process, measured."""

    seconds: float  # wall clock
    rss_mib: int  # peak resident set
    out: str  # what it printed
    cpu_seconds: float  # user and system, every thread


def timed(command: list[str], env: dict[str, str], cwd: Path, warm: tuple[Path, ...] = ()) -> Timed:
    """One child process, timed with its ``warm`` inputs read into the page cache first."""
    os.sync()  # the setup's writes (generated files, database copies) land before the clock
    # A dump read before a database copy may have left the page cache and be read from disk
    # again (on one VM that cost grep 2 s in one run and nothing in the next). Every command
    # starts with its inputs cached, so both sides are timed on parsing and matching alone.
    read_into_cache(*warm)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # grep -c exits 1 on no match
        raise SystemExit(f"{command[0]} failed: {status}")
    return Timed(elapsed, usage.ru_maxrss // 1024, out, usage.ru_utime + usage.ru_stime)


def read_into_cache(*paths: Path) -> None:
    """Read the files through, so that the page cache holds them."""
    for path in paths:
        with path.open("rb") as cached:
            while cached.read(1 << 20):
                pass


# The ratios to grep run alone that issue 18 asks of each list (PostgreSQL: 2x for both).
TARGETS = {"combo": 3.0, "ulp": 2.0}
POSTGRES_TARGET = 2.0


def cpu_budget(grep_seconds: float, target: float) -> float:
    """The most CPU seconds a run may use and still be ``target`` times as fast as grep: every
    core busy from start to end."""
    return (os.cpu_count() or 1) * grep_seconds / target


# The first baseline: every enrolled address as a fixed string, case-insensitive, bytewise.
GREP = ["grep", "-F", "-i", "-c", "-f", "enrolled_emails.txt"]
GREP_ENV = {**os.environ, "LC_ALL": "C"}
# The second baseline a user could pick instead: a generic SQL engine (bench/duckdb_join.py).
DUCKDB_JOIN = Path(__file__).with_name("duckdb_join.py")


def grep_round(work: Path, dump: str) -> tuple[float, float, str]:
    """grep twice in a row, its inputs cached both times: the first after the round's other
    commands, the second straight after itself, and the count it printed. The second is grep
    at its best, the baseline the targets name ("grep run alone"): on the 2-core VM, grep with
    a million patterns (1.9 GB) ran 5.3-5.7 s straight after another grep and 6.7-7.1 s right
    after an ingest or the DuckDB join, dirty pages synced either way."""
    inputs = (work / "enrolled_emails.txt", work / dump)
    after_others = timed([*GREP, dump], GREP_ENV, work, warm=inputs)
    alone = timed([*GREP, dump], GREP_ENV, work, warm=inputs)
    return after_others.seconds, alone.seconds, alone.out


def versus_grep(
    lines: int,
    runs: list[float],
    grep_runs: list[tuple[float, float]],
    target: float,
    cpu_runs: list[float],
) -> dict[str, Any]:
    """Our ingest's runs against grep's in the same rounds (pairs from :func:`grep_round`):
    medians, each run, and the ratio of the medians (and of the best runs) against ``target``,
    which the ratio to grep alone must meet. Beside them, the CPU seconds each ingest used
    (this process's threads; a PostgreSQL server's work is not in them) and the most it could
    use and still meet the target: every core busy from start to end."""
    seconds = statistics.median(runs)
    alone = [pair[1] for pair in grep_runs]
    after_others = [pair[0] for pair in grep_runs]
    grep_s = statistics.median(alone)
    return {
        "seconds_median": round(seconds, 2),
        "seconds_each": [round(run, 2) for run in runs],
        "lines_per_s_median": round(lines / seconds),
        "grep_alone_seconds_median": round(grep_s, 2),
        "grep_alone_seconds_each": [round(run, 2) for run in alone],
        "grep_alone_lines_per_s_median": round(lines / grep_s),
        "ratio_vs_grep_alone_median": round(grep_s / seconds, 3),
        "ratio_vs_grep_alone_best": round(min(alone) / min(runs), 3),
        "target_ratio": target,
        "meets_target": grep_s / seconds >= target,
        "cpu_seconds_each": [round(run, 2) for run in cpu_runs],
        "cpu_seconds_median": round(statistics.median(cpu_runs), 2),
        "cpu_seconds_at_target": round(cpu_budget(grep_s, target), 2),
        # The same grep right after the other commands: slower, so not the verdict's baseline.
        "grep_after_others_seconds_each": [round(run, 2) for run in after_others],
        "ratio_vs_grep_after_others_median": round(statistics.median(after_others) / seconds, 3),
    }


def compile_bytecode(checkout: Path) -> None:
    """Compile a build's modules before it is timed, as a first run writes them (where
    PYTHONDONTWRITEBYTECODE is set, every run would compile them again: 60 ms of start-up,
    measured, and only for a build whose tests never ran in that checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    python = checkout / ".venv/bin/python"
    folders = [
        str(checkout / name) for name in ("exposure", "connectors") if (checkout / name).is_dir()
    ]
    subprocess.run(
        [str(python), "-m", "compileall", "-q", *folders], env=env, check=True, capture_output=True
    )


def corpus_figures(compacted: str) -> dict[str, Any]:
    """What ``exposure corpus compact`` printed, as rates: staged digests a second until
    ``/range`` serves them (the fold; target 1,000,000), and until they settle in the table."""
    out = json.loads(compacted)
    folded = out["folded_digests"]
    return {
        "corpus_folded_digests": folded,
        "corpus_fold_seconds": out["fold_seconds"],
        "corpus_fold_digests_per_s": round(folded / max(out["fold_seconds"], 1e-9)),
        "corpus_settle_seconds": out["settle_seconds"],
        "corpus_settle_digests_per_s": round(folded / max(out["settle_seconds"], 1e-9)),
    }


def duckdb_available() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def exposure_env(database: Path | str) -> dict[str, str]:
    """The environment of an ``exposure`` command on a SQLite file, or a database URL."""
    url = database if isinstance(database, str) else f"sqlite+aiosqlite:///{database}"
    return {
        **os.environ,
        "EXPOSURE_PEPPER": PEPPER,
        "EXPOSURE_DATABASE_URL": url,
        "EXPOSURE_BROKER_DOMAINS": "mirai-sec.co.jp",
    }


def enrolled_database(work: Path, exposure: str, name: str) -> tuple[Path, float]:
    """A database enrolled with customers.csv by ``exposure`` (its own schema), and the
    seconds the enrolment took."""
    enrolled = work / f"{name}.db"
    env = exposure_env(enrolled)
    subprocess.run([exposure, "db", "upgrade"], env=env, cwd=work, check=True, capture_output=True)
    return enrolled, timed([exposure, "enroll", "customers.csv"], env, work).seconds


def timed_ingest(work: Path, exposure: str, enrolled: Path, dump: str, name: str) -> Timed:
    """One ``exposure ingest`` of ``dump`` on a fresh copy of ``enrolled``."""
    db = work / f"{name}.db"
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + "-corpus"), ignore_errors=True)  # its spool
    shutil.copy(enrolled, db)
    # The enrolled index `exposure enroll` saved beside the database goes with it, as for
    # every ingest but the first after an enrolment through the API (an older build saves none).
    index = db.with_name(db.name + "-index")
    shutil.rmtree(index, ignore_errors=True)
    if enrolled.with_name(enrolled.name + "-index").is_dir():
        shutil.copytree(enrolled.with_name(enrolled.name + "-index"), index)
    return timed([exposure, "ingest", dump], exposure_env(db), work, warm=(db, work / dump))


def throughput_case(
    work: Path, lines: int, exposure: str, repeat: int, baseline: str | None
) -> dict[str, Any]:
    """Each command runs ``repeat`` times, interleaved with the others (each ingest on a fresh
    copy of the enrolled database); ratios compare medians, so one slow run of either side
    (this VM's grep varies from 6 to 10 s on the same file) cannot decide the verdict.
    ``baseline``: another build's ``exposure`` (an earlier commit's checkout), timed the same
    way in the same rounds, on a database it enrolled itself."""
    enrolled, enrol_s = enrolled_database(work, exposure, "enrolled")
    results: dict[str, Any] = {"lines": lines, "enrol_seconds": round(enrol_s, 1)}
    if baseline is not None:
        baseline_enrolled, baseline_enrol_s = enrolled_database(work, baseline, "baseline-enrolled")
        results["baseline"] = {"exposure": baseline, "enrol_seconds": round(baseline_enrol_s, 1)}
    for name, dump in (("combo", "dump.txt"), ("ulp", "dump_ulp.txt")):
        target = TARGETS[name]
        grep_runs: list[tuple[float, float]] = []
        duckdb_runs: list[float] = []
        duckdb_hits = ""
        runs: list[Timed] = []
        baseline_runs: list[float] = []
        for _ in range(repeat):
            inputs = (work / "enrolled_emails.txt", work / dump)
            after_others, alone, grep_count = grep_round(work, dump)
            grep_runs.append((after_others, alone))
            if duckdb_available():
                join = [sys.executable, str(DUCKDB_JOIN), dump, name, PEPPER]
                duckdb = timed(join, dict(os.environ), work, warm=inputs)
                duckdb_runs.append(duckdb.seconds)
                duckdb_hits = duckdb.out
            runs.append(timed_ingest(work, exposure, enrolled, dump, name))
            if baseline is not None:
                baseline_runs.append(
                    timed_ingest(
                        work, baseline, baseline_enrolled, dump, f"baseline-{name}"
                    ).seconds
                )
        # Folding the staged corpus digests is the API's background job, timed on its own.
        db = work / f"{name}.db"
        compacted = timed([exposure, "corpus", "compact"], exposure_env(db), work).out
        each = [run.seconds for run in runs]
        seconds = statistics.median(each)
        summary = json.loads(runs[-1].out)
        results[name] = {
            "runs": repeat,
            **versus_grep(lines, each, grep_runs, target, [run.cpu_seconds for run in runs]),
            "grep_hits": int(grep_count.strip() or 0),
            "peak_rss_mib": max(run.rss_mib for run in runs),
            "rss_under_1gb": max(run.rss_mib for run in runs) < 1024,
            "matched_records": summary["matched_records"],
            "new_exposures": summary["new_exposures"],
            **corpus_figures(compacted),
        }
        if duckdb_runs:
            duckdb_s = statistics.median(duckdb_runs)
            results[name] |= {
                "duckdb_hits": int(duckdb_hits.strip() or 0),
                "duckdb_seconds_each": [round(run, 2) for run in duckdb_runs],
                "ratio_vs_duckdb_median": round(duckdb_s / seconds, 3),
                "ratio_vs_duckdb_best": round(min(duckdb_runs) / min(each), 3),
                "target_ratio_vs_duckdb": 1.3,
                "meets_duckdb_target": duckdb_s / seconds >= 1.3,
            }
        else:
            results[name]["duckdb"] = "not installed: pip install -e '.[dev]'"
        if baseline_runs:
            results["baseline"][name] = {
                "seconds_each": [round(run, 2) for run in baseline_runs],
                "seconds_median": round(statistics.median(baseline_runs), 2),
                # Above 1: this build is faster than the baseline.
                "speedup_median": round(statistics.median(baseline_runs) / seconds, 3),
                "speedup_best": round(min(baseline_runs) / min(each), 3),
            }
    return results


def postgres_case(work: Path, lines: int, exposure: str, repeat: int, url: str) -> dict[str, Any]:
    """The throughput case on PostgreSQL (``url``: a server where databases may be created):
    the customers enrolled once into a database that every ingest gets a fresh copy of
    (``CREATE DATABASE ... TEMPLATE``), grep timed in the same rounds, and the corpus fold of
    the last ingest's staged digests. The databases are dropped at the end."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    server = make_url(url).set(drivername="postgresql")

    def on(database: str) -> str:
        return server.set(database=database).render_as_string(False)

    async def admin(*statements: str) -> None:
        conn = await asyncpg.connect(on(server.database or "postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def env(database: str) -> dict[str, str]:
        return exposure_env(make_url(url).set(database=database).render_as_string(False))

    enrolled, run_db = "exposure_bench_enrolled", "exposure_bench_ingest"
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {enrolled}", f"CREATE DATABASE {enrolled}"))
    try:
        subprocess.run(
            [exposure, "db", "upgrade"],
            env=env(enrolled),
            cwd=work,
            check=True,
            capture_output=True,
        )
        enrol_s = timed([exposure, "enroll", "customers.csv"], env(enrolled), work).seconds
        results: dict[str, Any] = {"enrol_seconds": round(enrol_s, 1)}
        for name, dump in (("combo", "dump.txt"), ("ulp", "dump_ulp.txt")):
            runs: list[float] = []
            cpu_runs: list[float] = []
            grep_runs: list[tuple[float, float]] = []
            for _ in range(repeat):
                inputs = (work / "enrolled_emails.txt", work / dump)
                after_others, alone, _ = grep_round(work, dump)
                grep_runs.append((after_others, alone))
                asyncio.run(
                    admin(
                        f"DROP DATABASE IF EXISTS {run_db}",
                        f"CREATE DATABASE {run_db} TEMPLATE {enrolled}",
                    )
                )
                ingest = timed([exposure, "ingest", dump], env(run_db), work, warm=inputs)
                runs.append(ingest.seconds)
                cpu_runs.append(ingest.cpu_seconds)
            compacted = timed([exposure, "corpus", "compact"], env(run_db), work).out
            results[name] = {
                **versus_grep(lines, runs, grep_runs, POSTGRES_TARGET, cpu_runs),
                **corpus_figures(compacted),
            }
    finally:
        asyncio.run(
            admin(f"DROP DATABASE IF EXISTS {run_db}", f"DROP DATABASE IF EXISTS {enrolled}")
        )
    return results


def argon2_case(work: Path, hits: list[int], exposure: str) -> dict[str, Any]:
    chosen = sorted(set(hits))[:ARGON2_CUSTOMERS]
    hasher = argon2.PasswordHasher()  # argon2-cffi defaults, as a broker would enrol
    passwords = {n: f"Current#{n}" for n in chosen}
    hashes = {n: hasher.hash(passwords[n]) for n in chosen}
    with (work / "argon2_customers.csv").open("w") as csv:
        csv.write("customer_id,email,login_id,phone,password_hash\n")
        for n in chosen:
            csv.write(f"C{n:08d},{email(n)},,,{hashes[n]}\n")
    with (work / "argon2_dump.txt").open("w") as dump:
        for i, n in enumerate(chosen):  # half current, half stale: every one is verified
            dump.write(f"{email(n)}:{passwords[n] if i % 2 else 'Stale#' + str(n)}\n")
    # First verifications only: the stale half's tweak checks (budget x more verifications,
    # behind the first ones) are measured by detection_bench.py tweaks.
    env = {**exposure_env(work / "argon2.db"), "EXPOSURE_TWEAK_GUESSES": "0"}
    subprocess.run([exposure, "db", "upgrade"], env=env, cwd=work, check=True, capture_output=True)
    subprocess.run(
        [exposure, "enroll", "argon2_customers.csv"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )
    run = timed([exposure, "ingest", "argon2_dump.txt"], env, work)
    summary = json.loads(run.out)
    verifications = summary["verifications"]
    verify_seconds = summary["inputs"][0]["verify_seconds"]

    from exposure.passwords.verifier import PasswordVerifier  # the single-thread path, one worker

    pairs = [(hashes[n], passwords[n]) for n in chosen]
    import asyncio

    async def one_thread() -> float:
        async with PasswordVerifier(workers=1) as verifier:
            start = time.perf_counter()
            await verifier.verify_many(pairs)
            return time.perf_counter() - start

    single = asyncio.run(one_thread())
    start = time.perf_counter()
    for phc, password in pairs:
        hasher.verify(phc, password)
    library = time.perf_counter() - start
    rate = verifications / verify_seconds
    return {
        "verifications": verifications,
        "ingest_seconds_including_startup": round(run.seconds, 2),
        "ingest_verify_seconds": round(verify_seconds, 2),
        "ingest_verifications_per_s": round(rate, 1),
        "ingest_verifications_per_s_whole_command": round(verifications / run.seconds, 1),
        "one_thread_verifications_per_s": round(len(pairs) / single, 1),
        "library_loop_verifications_per_s": round(len(pairs) / library, 1),
        "ratio_vs_one_thread": round(rate / (len(pairs) / single), 2),
        "ratio_vs_library_loop": round(rate / (len(pairs) / library), 2),
        "target_ratio": 1.8,
        "cores": os.cpu_count(),
    }


def index_case(identifiers: int) -> dict[str, Any]:
    """Memory of the enrolled index with 10 million identifiers, and its batch lookup speed.

    Runs in a child process so its peak RSS is its own.
    """
    code = f"""
import json, os, resource, time
import numpy as np
from exposure.ingest.matching import EnrolledIndex
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
joined = np.random.default_rng(1).integers(0, 2**63, {identifiers}, dtype=np.uint64).tobytes()
started = time.perf_counter()
index = EnrolledIndex.from_prefixes(joined)
built = time.perf_counter() - started
del joined
probe = [os.urandom(32) for _ in range(1_000_000)]
started = time.perf_counter()
index.contains(probe)
looked = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"identifiers": len(index), "index_mib": index.nbytes // 2**20,
    "build_seconds": round(built, 2), "lookups_per_s": round(1_000_000 / looked),
    "process_peak_rss_mib": peak // 1024, "rss_growth_mib": (peak - before) // 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="keep the generated files here")
    parser.add_argument("--skip-argon2", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of an earlier commit, bootstrapped (its .venv/bin/exposure is timed "
        "in the same rounds)",
    )
    args = parser.parse_args()
    exposure = str(Path(sys.executable).with_name("exposure"))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        hits = generate(work, args.lines, args.customers)
        print(
            f"generated {args.lines:,} lines in {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        from exposure.dumps import _fastscan  # type: ignore[attr-defined]

        # Whether the native fast path hashes with the CPU's SHA extensions (else OpenSSL).
        report: dict[str, Any] = {"sha_extensions": bool(_fastscan.SHA_EXTENSIONS)}
        report["index_10m"] = index_case(10_000_000)
        compile_bytecode(Path(__file__).resolve().parent.parent)
        if args.baseline is not None:
            compile_bytecode(args.baseline.resolve())
        baseline = None if args.baseline is None else str(args.baseline / ".venv/bin/exposure")
        report["throughput"] = throughput_case(work, args.lines, exposure, args.repeat, baseline)
        if url := os.environ.get("EXPOSURE_TEST_POSTGRES_URL"):
            report["postgres"] = postgres_case(work, args.lines, exposure, args.repeat, url)
        if not args.skip_argon2:
            report["argon2"] = argon2_case(work, hits, exposure)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
