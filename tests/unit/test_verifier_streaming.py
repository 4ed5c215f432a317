"""The verifier reports each result as it completes, and keeps background (tweak) work to at
most one pair per worker, over every call."""

from __future__ import annotations

import asyncio
import threading
import time

import argon2
import pytest

from exposure.passwords import verifier as passwords
from exposure.passwords.verifier import PasswordVerifier

FAST = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def test_verify_many_reports_each_result_as_it_completes() -> None:
    enrolled = FAST.hash("right")
    pairs = [(enrolled, "right"), (enrolled, "wrong"), (enrolled, "right")]
    seen: list[tuple[int, bool]] = []
    with PasswordVerifier(workers=1) as verifier:  # one worker: in input order
        results = await verifier.verify_many(pairs, on_result=lambda i, ok: seen.append((i, ok)))
    assert results == [True, False, True]
    assert seen == [(0, True), (1, False), (2, True)]


async def test_verify_any_answers_each_job_once_as_soon_as_it_is_known() -> None:
    enrolled = FAST.hash("Sakura!2025")
    jobs = [
        (enrolled, ["Sakura!2024", "Sakura!2025", "never-tried"]),
        (FAST.hash("other"), ["x", "y"]),
        ("5f4dcc3b5aa765d61d8327deb882cf99", ["password"]),  # refused hash: answered at once
        (enrolled, []),  # nothing to try: answered at once
    ]
    answers: list[tuple[int, bool]] = []
    with PasswordVerifier(workers=1) as verifier:
        matched = await verifier.verify_any(jobs, on_result=lambda j, ok: answers.append((j, ok)))
    assert matched == [True, False, False, False]
    assert answers[:2] == [(2, False), (3, False)]
    assert sorted(answers[2:]) == [(0, True), (1, False)] and len(answers) == 4


async def test_background_work_holds_at_most_one_pair_per_worker_over_all_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two verify_any calls at once (two batches' tweak checks) still hand the pool at most
    one pair per worker, so a first verification waits behind that many at most."""
    running = peak = 0
    lock = threading.Lock()
    real = passwords._verify_one

    def counted(enrolled: str, leaked: str) -> object:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.005)
            return real(enrolled, leaked)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_verify_one", counted)
    enrolled = FAST.hash("pw")
    jobs = [(enrolled, [f"guess-{i}" for i in range(20)])]
    # A pool of four threads, used by background work as if it had two workers: the pool
    # could run four at once, the background lane lets two.
    with PasswordVerifier(workers=2) as verifier:
        verifier._pool._max_workers = 4
        results = await asyncio.gather(verifier.verify_any(jobs), verifier.verify_any(jobs))
    assert results == [[False], [False]]
    assert peak <= 2
