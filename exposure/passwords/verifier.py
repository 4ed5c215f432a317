"""Leaked passwords against enrolled password hashes: the verification pool and the status.

Nothing here logs, stores or raises with a password or an identifier in it.

**Hashes.** A leaked value that :func:`looks_like_hash` is never verified as the plaintext, and
its status is ``absent`` (the contract's "the leak carries no password"), not ``unknown`` (which
means "no hash enrolled" and would make every hashed third-party dump a ``notify``); a broker-site
hash leak is still ``force_reset`` (:mod:`.hash_shapes`).

**Verification.** Every scheme :mod:`.schemes` accepts is computed by a library that releases
the GIL for the expensive part (argon2-cffi's core, pyca's bcrypt, OpenSSL through ``hashlib``,
libxcrypt through ctypes), so one pool of threads keeps every core busy whatever the mix of
schemes. argon2 computes all its lanes on the worker's own thread (:mod:`.argon2_lanes`): a
pool of argon2-cffi's own threaded calls would oversubscribe the cores.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Self

from exposure.domain.policy import PasswordStatus
from exposure.passwords import argon2_lanes, sha_crypt
from exposure.passwords.errors import UnusableHash
from exposure.passwords.hash_shapes import looks_like_hash
from exposure.passwords.schemes import RefusedHash, classify, is_verifiable

__all__ = [
    "PasswordVerifier",
    "is_verifiable",
    "looks_like_hash",
    "password_status",
]

logger = logging.getLogger(__name__)


class _Outcome(Enum):
    MATCH = "match"
    MISMATCH = "mismatch"
    MALFORMED = "malformed"  # the enrolled hash cannot be verified against
    SKIPPED = "skipped"  # the leaked value is empty or a hash: never verified


def _always(key: int) -> bool:
    return True


def _verify_one(enrolled_hash: str, leaked: str) -> _Outcome:
    if not leaked or looks_like_hash(leaked):
        return _Outcome.SKIPPED
    parsed = classify(enrolled_hash)
    if isinstance(parsed, RefusedHash):
        return _Outcome.MALFORMED
    try:
        secret = leaked.encode("utf-8")  # exact bytes: never normalised, never stripped
    except UnicodeEncodeError:
        # Lone surrogates (undecodable input) cannot equal any valid-Unicode password; caught
        # here so the exception, which holds the string, goes no further.
        return _Outcome.MISMATCH
    try:
        return _Outcome.MATCH if parsed.verify(secret) else _Outcome.MISMATCH
    except UnusableHash:
        return _Outcome.MALFORMED


def _default_workers() -> int:
    # The CPUs this process may run on (container limits via affinity), else all of them.
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class PasswordVerifier:
    """Verifies leaked passwords against enrolled hashes of every accepted scheme on a worker
    pool that keeps every core busy (each scheme's library releases the GIL, so threads scale).

    ``workers`` defaults to the CPUs available to this process. Each worker keeps a buffer of
    the largest argon2 ``m`` KiB it has seen (64 MiB with argon2-cffi defaults). Counters
    :attr:`verified`, :attr:`malformed` and :attr:`skipped` accumulate for the ingestion summary.
    Use as a (sync or async) context manager or call :meth:`close`.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers or _default_workers()
        argon2_lanes.self_test()
        if sha_crypt.backend() != "libxcrypt":
            logger.warning(
                "libcrypt (libxcrypt) cannot verify sha256_crypt/sha512_crypt here: they are "
                "verified in pure Python, on one core at a time"
            )
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="password-verify")
        self.verified = 0  # pairs checked: match or mismatch
        self.malformed = 0  # enrolled hashes that could not be used
        self.skipped = 0  # leaked values not verified: empty or a hash
        # verify_any work waits while any verify_many call runs (set: none runs).
        self._foreground = 0
        self._foreground_idle = asyncio.Event()
        self._foreground_idle.set()
        # Background pairs handed to the pool, over every verify_any call: at most one per
        # worker, so a verify_many that starts finds at most that many ahead of it.
        self._background = asyncio.Semaphore(self.workers)

    async def verify_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        on_result: Callable[[int, bool], None] | None = None,
    ) -> list[bool]:
        """``(enrolled_hash, leaked_password)`` pairs -> whether each verifies, in input order.

        Pairs start in input order (put the most urgent first); ``on_result(index, verified)``
        is called on the event loop as each pair completes, so a caller can act on the first
        results while the rest run. An enrolled hash that is refused or unusable gives
        ``False`` and is counted in :attr:`malformed`; an empty or hash-looking leaked value
        gives ``False`` without hashing (:attr:`skipped`). Takes precedence over
        :meth:`verify_any` work.
        """
        record = None
        if on_result is not None:
            report = on_result

            def record(index: int, outcome: _Outcome) -> None:
                report(index, outcome is _Outcome.MATCH)

        self._foreground += 1
        self._foreground_idle.clear()
        try:
            # Two feeders per worker keep a job queued behind each running one, so no core
            # idles while the event loop gets round to submitting the next.
            outcomes = await self._run(list(enumerate(pairs)), 2 * self.workers, _always, record)
        finally:
            self._foreground -= 1
            if not self._foreground:
                self._foreground_idle.set()
        counts = Counter(outcomes.values())
        self.malformed += counts[_Outcome.MALFORMED]
        self.skipped += counts[_Outcome.SKIPPED]
        self.verified += counts[_Outcome.MATCH] + counts[_Outcome.MISMATCH]
        return [outcomes.get(index) is _Outcome.MATCH for index in range(len(pairs))]

    async def verify_any(
        self,
        jobs: Sequence[tuple[str, Sequence[str]]],
        *,
        on_result: Callable[[int, bool], None] | None = None,
    ) -> list[bool]:
        """``(enrolled_hash, candidate_passwords)`` jobs -> whether any candidate verifies.

        For checking several candidates against one hash, such as the tweaks of a stale
        leaked password (:mod:`.tweaks`): a job's remaining candidates are dropped at its first
        match, and the work runs behind :meth:`verify_many` (no new pair starts while a
        ``verify_many`` call is running, and at most one background pair per worker is handed
        to the pool, over all calls), so first verifications are never delayed by more than
        the pairs already running. Jobs start in input order; ``on_result(job, matched)`` is
        called on the event loop once per job, as soon as its answer is known. Counters as in
        :meth:`verify_many`; an unusable enrolled hash counts once per job.
        """
        matched = [False] * len(jobs)
        remaining = [0] * len(jobs)
        pairs: list[tuple[int, tuple[str, str]]] = []
        answered: list[int] = []  # jobs whose answer is known before any pair runs
        for job, (enrolled_hash, candidates) in enumerate(jobs):
            if isinstance(classify(enrolled_hash), RefusedHash):
                self.malformed += 1
                answered.append(job)
                continue
            remaining[job] = len(candidates)
            if not candidates:
                answered.append(job)
            pairs.extend((job, (enrolled_hash, candidate)) for candidate in candidates)
        if on_result is not None:
            for job in answered:
                on_result(job, False)

        def still_open(job: int) -> bool:
            return not matched[job]

        def record(job: int, outcome: _Outcome) -> None:
            if matched[job]:
                return  # answered already (a pair that was running when another matched)
            remaining[job] -= 1
            if outcome is _Outcome.MATCH:
                matched[job] = True
            if on_result is not None and (matched[job] or not remaining[job]):
                on_result(job, matched[job])

        outcomes = await self._run(pairs, self.workers, still_open, record, background=True)
        counts = Counter(outcomes.values())
        self.skipped += counts[_Outcome.SKIPPED]
        self.malformed += counts[_Outcome.MALFORMED]
        self.verified += counts[_Outcome.MATCH] + counts[_Outcome.MISMATCH]
        return matched

    async def _run(
        self,
        pairs: Sequence[tuple[int, tuple[str, str]]],
        feeders: int,
        wanted: Callable[[int], bool],
        record: Callable[[int, _Outcome], None] | None = None,
        *,
        background: bool = False,
    ) -> dict[int, _Outcome]:
        """Verify ``(key, (hash, password))`` pairs on the pool; a pair whose key is no longer
        ``wanted`` when its turn comes is dropped. Returns each verified pair's outcome by
        position in ``pairs``."""
        loop = asyncio.get_running_loop()
        outcomes: dict[int, _Outcome] = {}
        todo = iter(enumerate(pairs))

        async def verify(key: int, enrolled_hash: str, leaked: str) -> _Outcome | None:
            if not background:
                return await loop.run_in_executor(self._pool, _verify_one, enrolled_hash, leaked)
            async with self._background:
                await self._foreground_idle.wait()
                if not wanted(key):
                    return None
                return await loop.run_in_executor(self._pool, _verify_one, enrolled_hash, leaked)

        async def feed() -> None:
            # Shared iterator: each feeder takes the next pair when its previous one is done.
            for position, (key, (enrolled_hash, leaked)) in todo:
                if not wanted(key):
                    continue
                outcome = await verify(key, enrolled_hash, leaked)
                if outcome is None:
                    continue
                outcomes[position] = outcome
                if record is not None:
                    record(key, outcome)

        tasks = [asyncio.ensure_future(feed()) for _ in range(min(len(pairs), feeders))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # One failure (or our cancellation) stops the other feeders submitting more.
            for task in tasks:
                task.cancel()
            raise
        return outcomes

    def close(self) -> None:
        """Wait for running verifications, drop queued ones, stop the threads. Idempotent."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Joining threads blocks until running hashes finish: do it off the event loop.
        await asyncio.to_thread(self.close)


def password_status(
    enrolled_hash: str | None, leaked_password: str | None, verified: bool | None
) -> PasswordStatus:
    """The contract's ``password_status`` for one leaked record against one customer.

    * ``live``: password and hash present and ``verified`` (proof beats every heuristic below).
    * ``absent``: no password, an empty one, or one that :func:`looks_like_hash`.
    * ``unknown``: no enrolled hash, or one :func:`is_verifiable` refuses (``stale`` would
      under-react to a hash we simply cannot check).
    * ``stale``: otherwise, when ``verified`` is False.

    Raises ``ValueError`` when a check was possible but ``verified`` is None (a caller bug).
    """
    if verified and leaked_password and enrolled_hash:
        return PasswordStatus.LIVE
    if not leaked_password or looks_like_hash(leaked_password):
        return PasswordStatus.ABSENT
    if enrolled_hash is None or not is_verifiable(enrolled_hash):
        return PasswordStatus.UNKNOWN
    if verified is None:
        raise ValueError("password_status needs the verification result for this pair")
    return PasswordStatus.STALE
