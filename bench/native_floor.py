"""The floor under any ingest built on the native fast path, against grep run alone.

Issue 18 asks the combo ingest for 3x ``grep -F -i -c -f`` run alone. This measures the part
of an ingest no restructuring of the Python side can remove: reading the dump in 1 MiB blocks
and running the native scanner on them (``scan_lines``, ``split_combo``/``split_ulp``,
``match_combo``: keyed HMAC-SHA256 of every login, the probe of the enrolled index, SHA-1 of
every password for the corpus) on one thread per core, with nothing else: no process start-up,
no content key, no database, no Python path for the candidates, no corpus spool. Its time is a
lower bound on the time of ``exposure ingest`` on the same files; grep's median over it is the
highest ratio against grep that any ingest built this way could reach. The scanner's CPU seconds
are printed beside the CPU seconds a whole ingest may use to meet the target (every core busy
from start to end): what is left between the two is all the rest of an ingest may cost.

Same data set as bench/ingest_bench.py (``--workdir`` reuses its files), grep and the native
pass interleaved, medians of ``--repeat`` runs, files in the page cache.

    python bench/native_floor.py [--lines N] [--customers M] [--repeat R] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingest_bench import (
    GREP,
    GREP_ENV,
    PEPPER,
    TARGETS,
    cpu_budget,
    generate,
    read_into_cache,
    timed,
)

from exposure.customers.enrolment import Enroller, csv_records
from exposure.dumps import _fastscan
from exposure.dumps.fastpath import LookupTable
from exposure.ingest.matching import EnrolledIndex

BLOCK_BYTES = 1 << 20  # what the ingest's decoder hands the scanner (decode._BLOCK_CHUNK_BYTES)


def enrolled_table(work: Path) -> LookupTable:
    """The enrolled index of customers.csv, fingerprinted exactly as ``exposure enroll`` does."""
    enroller = Enroller(bytes.fromhex(PEPPER), login_id_case_sensitive=False, phone_region="JP")
    fingerprints: list[bytes] = []
    with (work / "customers.csv").open(encoding="utf-8", newline="") as stream:
        for item in csv_records(stream):
            fields = enroller.fields(*item) if isinstance(item, tuple) else item
            if isinstance(fields, tuple):
                fingerprints.extend(fingerprint for _, _, fingerprint, _ in fields[3])
    return EnrolledIndex.build(fingerprints).lookup_table()


def blocks(path: Path) -> Iterator[bytes]:
    """The dump as whole-line blocks of about BLOCK_BYTES."""
    with path.open("rb") as dump:
        rest = b""
        while chunk := dump.read(BLOCK_BYTES):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                yield data[:cut]
        if rest:
            yield rest + b"\n"


def native_pass(path: Path, fmt: str, table: LookupTable, threads: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (every thread of this process) of the native scanner over ``path``
    on ``threads`` threads, and how many records it handed to the Python path (those that may
    match)."""
    split = _fastscan.split_combo if fmt == "combo" else _fastscan.split_ulp
    pepper = bytes.fromhex(PEPPER)

    def scan(block: bytes) -> int:
        _fastscan.scan_lines(block, 0, len(block))
        fast, _ = split(block, 0, len(block))
        positions, _ = _fastscan.match_combo(
            block, fast, pepper, table.prefixes, table.starts, table.bits, True
        )
        return len(positions) // 4

    start, cpu = time.perf_counter(), time.process_time()
    candidates = 0
    with ThreadPoolExecutor(threads) as pool:
        in_flight: deque[Future[int]] = deque()
        for block in blocks(path):  # two blocks a thread in flight, as the ingest keeps
            in_flight.append(pool.submit(scan, block))
            if len(in_flight) > 2 * threads:
                candidates += in_flight.popleft().result()
        candidates += sum(future.result() for future in in_flight)
    return time.perf_counter() - start, time.process_time() - cpu, candidates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, help="keep (or reuse) the generated files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="native-floor-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "dump.txt").exists():
            generate(work, args.lines, args.customers)
        started = time.perf_counter()
        table = enrolled_table(work)
        with (work / "dump.txt").open("rb") as dump:
            lines = sum(1 for _ in dump)
        report: dict[str, Any] = {
            "lines": lines,
            "enrolled_identifiers": int(table.prefixes.size),
            "index_seconds": round(time.perf_counter() - started, 1),
            "threads": args.threads,
        }
        for fmt, dump in (("combo", "dump.txt"), ("ulp", "dump_ulp.txt")):
            native: list[float] = []
            native_cpu: list[float] = []
            grep: list[float] = []
            candidates = 0
            for _ in range(args.repeat):
                inputs = (work / "enrolled_emails.txt", work / dump)
                grep.append(timed([*GREP, dump], GREP_ENV, work, warm=inputs).seconds)
                read_into_cache(work / dump)
                seconds, cpu, candidates = native_pass(work / dump, fmt, table, args.threads)
                native.append(seconds)
                native_cpu.append(cpu)
            ceiling = statistics.median(grep) / statistics.median(native)
            report[fmt] = {
                "native_seconds_each": [round(s, 2) for s in native],
                "native_seconds_median": round(statistics.median(native), 2),
                "native_cpu_seconds_median": round(statistics.median(native_cpu), 2),
                "candidates_for_python": candidates,
                "grep_alone_seconds_each": [round(s, 2) for s in grep],
                "grep_alone_seconds_median": round(statistics.median(grep), 2),
                # The most any ingest on this native path could reach against grep alone.
                "ceiling_ratio_vs_grep_median": round(ceiling, 3),
                "ceiling_ratio_vs_grep_best": round(min(grep) / min(native), 3),
                "target_ratio": TARGETS[fmt],
                "target_within_ceiling": ceiling >= TARGETS[fmt],
                # What a whole ingest may spend to meet the target (every core busy from
                # start to end), of which the scanner alone takes native_cpu_seconds.
                "ingest_cpu_seconds_at_target": round(
                    cpu_budget(statistics.median(grep), TARGETS[fmt]), 2
                ),
            }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
