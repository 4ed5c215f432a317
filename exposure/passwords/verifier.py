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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Self

from exposure.domain.policy import PasswordStatus
from exposure.passwords import argon2_lanes, sha_crypt
from exposure.passwords.errors import (
    UnusableHash,
    VerifierResourceError,
    VerifierSelfTestError,
)
from exposure.passwords.hash_shapes import looks_like_hash
from exposure.passwords.schemes import RefusedHash, classify, is_verifiable

__all__ = [
    "PasswordVerifier",
    "VerifierResourceError",
    "VerifierSelfTestError",
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

    async def verify_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """``(enrolled_hash, leaked_password)`` pairs -> whether each verifies, in input order.

        Any pair list works, e.g. one hash against several candidate passwords. An enrolled
        hash that is refused or unusable gives ``False`` and is counted in :attr:`malformed`;
        an empty or hash-looking leaked value gives ``False`` without hashing (:attr:`skipped`).
        """
        loop = asyncio.get_running_loop()
        outcomes = [_Outcome.SKIPPED] * len(pairs)
        todo = iter(enumerate(pairs))

        async def feed() -> None:
            # Shared iterator: each feeder takes the next pair when its previous one is done.
            for index, (enrolled_hash, leaked) in todo:
                outcomes[index] = await loop.run_in_executor(
                    self._pool, _verify_one, enrolled_hash, leaked
                )

        # Two feeders per worker keep a job queued behind each running one, so no core idles
        # while the event loop gets round to submitting the next; memory stays bounded.
        count = min(len(pairs), 2 * self.workers)
        feeders = [asyncio.ensure_future(feed()) for _ in range(count)]
        try:
            await asyncio.gather(*feeders)
        except BaseException:
            # One failure (or our cancellation) stops the other feeders submitting more.
            for feeder in feeders:
                feeder.cancel()
            raise
        counts = Counter(outcomes)
        self.malformed += counts[_Outcome.MALFORMED]
        self.skipped += counts[_Outcome.SKIPPED]
        self.verified += counts[_Outcome.MATCH] + counts[_Outcome.MISMATCH]
        return [outcome is _Outcome.MATCH for outcome in outcomes]

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
