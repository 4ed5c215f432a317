"""Enrolment benchmark: 1,000,000 customers with an e-mail and a login ID each, on SQLite.

Target: ``exposure enroll`` under 15 s on this machine (2 cores). Baseline, in the same run: a
floor under any implementation, i.e. stdlib sqlite3 computing the identifiers' HMACs and inserting
the customers and identifiers (not the e-mail range keys ``exposure enroll`` writes too) in one
transaction, with no normalisation, validation or upsert logic. Its inserts and commit are also
timed alone: SQLite has one writer, so more cores do not shorten that part.

    python bench/enrol_bench.py [--customers N] [--target-seconds S]
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEPPER = "ab" * 32
DOMAINS = ["example.jp", "mail.example.com", "gmail.com", "docomo.ne.jp", "ezweb.ne.jp", "例え.jp"]


def generate(path: Path, customers: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8") as out:
        out.write("customer_id,email,login_id,phone,password_hash\n")
        for n in range(customers):
            domain = DOMAINS[n % len(DOMAINS)]
            local = f"user{n}.{rng.randrange(10**6)}"
            out.write(f"C{n:08d},{local}@{domain},ID{n:08d},,\n")


def baseline(csv_path: Path, db_path: Path) -> tuple[float, float]:
    """Seconds for the whole floor, and for its inserts and commit alone: SQLite has one writer,
    so no number of cores takes that part below what it is here."""
    key = bytes.fromhex(PEPPER)
    start = time.perf_counter()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE c (id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE i (fp BLOB, id TEXT, kind TEXT, PRIMARY KEY (fp, id))")
    conn.execute("CREATE INDEX ix ON i (id)")
    with csv_path.open(encoding="utf-8") as stream:
        next(stream)
        rows = [line.rstrip("\n").split(",") for line in stream]
    identifiers = [
        (hmac.digest(key, f"{kind}\x00{value.lower()}".encode(), "sha256"), r[0], kind)
        for r in rows
        for kind, value in (("email", r[1]), ("login_id", r[2]))
    ]
    inserts = time.perf_counter()
    conn.executemany("INSERT INTO c VALUES (?)", ((r[0],) for r in rows))
    conn.executemany("INSERT INTO i VALUES (?, ?, ?)", identifiers)
    conn.commit()
    end = time.perf_counter()
    conn.close()
    return end - start, end - inserts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--target-seconds", type=float, default=15.0)
    args = parser.parse_args()
    exposure = Path(sys.executable).with_name("exposure")
    with tempfile.TemporaryDirectory(prefix="enrol-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "customers.csv"
        generate(csv_path, args.customers)
        env = {
            **os.environ,
            "EXPOSURE_PEPPER": PEPPER,
            "EXPOSURE_DATABASE_URL": f"sqlite+aiosqlite:///{work / 'exposure.db'}",
        }
        subprocess.run(
            [str(exposure), "db", "upgrade"], env=env, cwd=work, check=True, capture_output=True
        )
        start = time.perf_counter()
        result = subprocess.run(
            [str(exposure), "enroll", str(csv_path)],
            env=env,
            cwd=work,
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads(result.stdout)
        floor, floor_inserts = baseline(csv_path, work / "baseline.db")
    report = {
        "customers": args.customers,
        "identifiers": summary["identifiers"],
        "rejected": summary["rejected"],
        "exposure_enroll_seconds": round(elapsed, 2),
        "customers_per_second": round(args.customers / elapsed),
        "peak_rss_mb": round(peak_rss_mb),
        "baseline_stdlib_sqlite3_seconds": round(floor, 2),
        "baseline_inserts_seconds": round(floor_inserts, 2),
        "ratio_vs_baseline": round(elapsed / floor, 2),
        "target_seconds": args.target_seconds,
        "meets_target": elapsed < args.target_seconds,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0 if report["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
