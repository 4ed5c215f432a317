"""Tweak checks of one run: the small changes of a stale leaked password, verified against the
customer's enrolled hash behind every first verification (docs/decisions/tweak-checks.md).

Each (customer, leaked password, enrolled hash) is tweak-checked once: the store remembers the
checks of earlier runs (``tweak_checks``), and within a run a check is started by the first
batch that needs it; later batches wait for its answer instead of starting another. The
candidates (:func:`exposure.passwords.tweaks.tweaks`) exist only here, in memory, for the
time the verifier needs them: never written, logged or raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exposure.passwords.tweaks import tweaks
from exposure.passwords.verifier import PasswordVerifier
from exposure.store.ingest import CheckKey


@dataclass(frozen=True, slots=True)
class TweakJob:
    """One stale leaked password to tweak-check, with the enrolled hash it is checked against."""

    key: CheckKey
    enrolled_hash: str = field(repr=False)
    leaked: str = field(repr=False)


class TweakCheckFailed(Exception):
    """The run's tweak verification failed (the batch that ran it says why); a batch waiting
    for its answer stops too. Carries no password."""


@dataclass(slots=True)
class _Check:
    done: asyncio.Event = field(default_factory=asyncio.Event)
    tweaked: bool | None = None
    failed: bool = False
    # Called once, synchronously, with the answer: batches escalate their waiting groups.
    dependents: list[Callable[[bool], None]] = field(default_factory=list)


class TweakChecks:
    """The tweak checks of one run, started by the batches that need them."""

    def __init__(self, verifier: PasswordVerifier, guesses: int) -> None:
        self.guesses = guesses
        self._verifier = verifier
        self._checks: dict[CheckKey, _Check] = {}

    @property
    def enabled(self) -> bool:
        return self.guesses > 0

    def answer(self, key: CheckKey) -> bool | None:
        """Whether a tweak verified, if this run has checked ``key`` already."""
        check = self._checks.get(key)
        return check.tweaked if check is not None else None

    def want(self, key: CheckKey, on_answer: Callable[[bool], None]) -> bool:
        """Call ``on_answer`` once ``key`` is checked; True when no batch had asked yet (the
        caller must then :meth:`run` it)."""
        check = self._checks.get(key)
        new = check is None
        if check is None:
            check = self._checks[key] = _Check()
        check.dependents.append(on_answer)
        return new

    async def wait(self, key: CheckKey) -> None:
        """Until ``key``'s check has answered (and its dependents were told)."""
        check = self._checks[key]
        await check.done.wait()
        if check.failed:
            raise TweakCheckFailed

    async def run(
        self, jobs: Sequence[TweakJob], on_answer: Callable[[CheckKey, bool], None]
    ) -> None:
        """Verify each job's tweaks (in the order given, behind first verifications) and
        answer each as soon as it is known: every dependent (they escalate), then
        ``on_answer`` (the caller records the verdict), in one go."""
        candidates = [(job.enrolled_hash, tweaks(job.leaked, self.guesses)) for job in jobs]

        def answered(index: int, tweaked: bool) -> None:
            key = jobs[index].key
            check = self._checks[key]
            check.tweaked = tweaked
            for dependent in check.dependents:
                dependent(tweaked)
            check.dependents.clear()
            on_answer(key, tweaked)
            check.done.set()

        try:
            await self._verifier.verify_any(candidates, on_result=answered)
        except BaseException:
            for job in jobs:
                check = self._checks[job.key]
                if not check.done.is_set():
                    check.failed = True
                    check.done.set()
            raise
        finally:
            candidates.clear()  # the tweaks go as soon as they are verified
