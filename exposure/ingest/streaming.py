"""Streaming verdicts: a batch's observations are written as their verifications complete
(docs/decisions/streaming-verdicts.md).

A prepared batch (:class:`~exposure.ingest.evaluator.Prepared`) has groups, one per exposure
key, each waiting for at most one verdict. :class:`BatchStream` runs the batch's first
verifications, most urgent first, and as each verdict arrives the groups it decides become
observations in the batch's :class:`StepBuffer`; the pipeline takes what the buffer holds, a
step at a time, and commits each step in its own short transaction. A group whose password
is stale is written as such at once, and its tweaks are then checked behind every first
verification (:mod:`exposure.ingest.tweak_checks`); a tweak that verifies raises the exposure
to ``tweaked`` through the same write path, in a later step (an escalation).

Crash safety: a step saves the run's checkpoint where it stood (it covers only batches whose
every verification is done). A resumed run reads such a batch again; what the interrupted
run had written of it is told by its sightings (``written``): an observation whose sightings
were all written is applied again without them, which changes nothing unless the evidence
is now stronger (a tweak verdict recorded since), so nothing is counted or sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from exposure.domain.lifecycle import ExposureKey, Observation
from exposure.domain.policy import PasswordStatus
from exposure.ingest.evaluator import Group, Prepared
from exposure.ingest.tweak_checks import TweakChecks, TweakJob
from exposure.passwords.verifier import PasswordVerifier
from exposure.store.ingest import CheckKey

# The first step of a batch is small, so the first decisions commit at once; each next step
# may take twice as many observations (a batch of thousands that need no verification still
# takes a handful of transactions).
FIRST_STEP = 1_000
LARGEST_STEP = 64_000
# After a batch's first step, each next one gathers what comes for this long (unless the batch
# is done): verdicts arriving tens of milliseconds apart would otherwise each pay a whole
# transaction, which the verifying cores then miss (2,000 live passwords: 2,000 steps).
STEP_GATHER_SECONDS = 0.25


@dataclass(slots=True)
class Step:
    """What one transaction writes: observations, and the verdicts they rest on."""

    observations: list[Observation] = field(default_factory=list)
    verdicts: dict[CheckKey, bool] = field(default_factory=dict)
    tweak_verdicts: dict[CheckKey, bool] = field(default_factory=dict)
    firsts: int = 0  # how many of the observations are first decisions (not escalations)

    def __bool__(self) -> bool:
        return bool(self.observations or self.verdicts or self.tweak_verdicts)


class StepBuffer:
    """What a batch has decided and not yet written. ``written``: the (key, ordinal) sightings
    an interrupted run already committed of this batch (resumed runs only).

    An escalation (a tweak verified) is always written after the observation it raises, in
    a later step, and a tweak verdict that escalated goes with its escalations: so a stale
    exposure is written as such, then raised, whatever the timing (the outbox holds the same
    events on every run), and a run resumed between the two still raises it (the verdict is
    not recorded yet, so the check runs again and escalates).
    """

    def __init__(
        self,
        written: Collection[tuple[ExposureKey, int]] = (),
        *,
        firsts_written: asyncio.Event | None = None,
    ) -> None:
        self._written = written
        # Set once every first decision is committed (:meth:`first_pass_done`, then
        # :meth:`committed`): the next batch writes nothing before, so exposures open in
        # the order their batches were read, whatever the timing.
        self.firsts_written = firsts_written or asyncio.Event()
        self._first_pass = False
        self._uncommitted = 0
        self._pending: dict[ExposureKey, Observation] = {}
        # A customer's first decisions wait here until every group of that customer in the
        # batch is decided, then go together, strongest first: the customer's case opens at
        # its highest action, so its events do not depend on which verification ends first.
        self._undecided: Counter[str] = Counter()
        self._gated: dict[str, dict[ExposureKey, Observation]] = {}
        self._raised: dict[ExposureKey, Observation] = {}  # escalations ready to go
        self._held: dict[ExposureKey, Observation] = {}  # escalations of pending ones
        self._held_verdicts: dict[CheckKey, bool] = {}  # tweak verdicts that go with them
        self._step = Step()
        self._changed = asyncio.Event()
        self._closed = asyncio.Event()  # set by close(): nothing more will be added
        self._taken_at: float | None = None  # when the last step was taken
        self._size = FIRST_STEP

    def skip_written(self, written: Collection[tuple[ExposureKey, int]]) -> None:
        """What an interrupted run committed of this batch (before anything is added)."""
        self._written = written

    def expect(self, keys: Iterable[ExposureKey]) -> None:
        """The keys of the batch's groups (each will be added once): a customer's
        observations are held until all of that customer's are added."""
        self._undecided.update(key.customer_id for key in keys)

    def add(self, observation: Observation) -> None:
        """A group decided: one observation for its key (once per key and batch)."""
        if self._written:
            key, written = observation.key, self._written
            # None left: it is applied again without sightings, which counts nowhere.
            places = observation.sightings
            observation.sightings = [s for s in places if (key, s.ordinal) not in written]
        self._uncommitted += 1
        customer_id = observation.key.customer_id
        if self._undecided[customer_id] > 0:
            self._undecided[customer_id] -= 1
            gated = self._gated.setdefault(customer_id, {})
            gated[observation.key] = observation
            if self._undecided[customer_id]:
                return
            self._pending.update(self._gated.pop(customer_id))
        else:
            self._pending[observation.key] = observation
        self._changed.set()

    def _waiting(self, key: ExposureKey) -> bool:
        """Whether the first decision of ``key`` is added and not yet taken."""
        return key in self._pending or key in self._gated.get(key.customer_id, {})

    def first_pass_done(self) -> None:
        """Every first decision was added (the batch's first verifications are done)."""
        self._first_pass = True
        self._check_firsts()

    def committed(self, step: Step) -> None:
        """``step`` (from :meth:`next_step`) is committed."""
        self._uncommitted -= step.firsts
        self._check_firsts()

    def _check_firsts(self) -> None:
        if self._first_pass and not self._uncommitted:
            self.firsts_written.set()

    def escalate(self, observation: Observation) -> None:
        """Stronger evidence for a key added before (a tweak verified), as an observation
        without sightings (they were counted with the one it raises)."""
        observation.sightings = []
        if self._waiting(observation.key):
            self._held[observation.key] = observation
        else:
            self._raised[observation.key] = observation
        self._changed.set()

    def verdict(self, key: CheckKey, verified: bool) -> None:
        self._step.verdicts[key] = verified
        self._changed.set()

    def tweak_verdict(self, key: CheckKey, tweaked: bool) -> None:
        """A tweak check's answer (after its escalations, if any, were added)."""
        if self._held:
            self._held_verdicts[key] = tweaked
        else:
            self._step.tweak_verdicts[key] = tweaked
        self._changed.set()

    def close(self) -> None:
        """Nothing more will be added: :meth:`next_step` returns None once all is taken."""
        self._closed.set()
        self._changed.set()

    def abandon(self) -> None:
        """The batch failed: nothing more is written, and the next batch must not wait."""
        self.close()
        self.firsts_written.set()

    def drain(self) -> Step:
        """Everything the buffer holds, as one step (once closed with nothing held back)."""
        self._size = sys.maxsize
        return self._take()

    async def next_step(self) -> Step | None:
        """The next step to write, as soon as there is something; None when closed and
        empty. Verdicts and ready escalations go whole; pending observations the strongest
        first, up to the step's size."""
        while True:
            await self._gather()
            step = self._take()
            if step:
                self._taken_at = time.monotonic()
                return step
            if self._closed.is_set():
                return None
            self._changed.clear()
            await self._changed.wait()

    async def _gather(self) -> None:
        """Wait until :data:`STEP_GATHER_SECONDS` after the last step was taken, or the batch
        is closed (the first step of a batch goes at once)."""
        if self._taken_at is None or self._closed.is_set():
            return
        wait = self._taken_at + STEP_GATHER_SECONDS - time.monotonic()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), wait)

    def _take(self) -> Step:
        step, self._step = self._step, Step()
        step.observations.extend(self._raised.values())
        self._raised.clear()
        if self._held or len(self._pending) <= self._size:
            # (Escalations wait for their observations: every pending one goes now, and the
            # escalations, with their verdicts, in the next step.)
            step.observations.extend(self._pending.values())
            step.firsts = len(self._pending)
            self._pending.clear()
            held, self._held = self._held, {}
            for key, escalation in held.items():
                if self._waiting(key):  # its customer's decisions are still gated
                    self._held[key] = escalation
                else:
                    self._raised[key] = escalation
            if not self._held:
                self._step.tweak_verdicts.update(self._held_verdicts)
                self._held_verdicts.clear()
        else:
            strongest = sorted(self._pending.values(), key=Observation.rank, reverse=True)
            for observation in strongest[: self._size]:
                step.observations.append(self._pending.pop(observation.key))
            step.firsts = min(self._size, len(strongest))
        if step.observations:
            self._size = min(2 * self._size, LARGEST_STEP)
        return step


class BatchStream:
    """Runs one prepared batch's verifications and turns its groups into observations in
    ``buffer`` as their verdicts come. ``run_verdicts``: this run's verdicts so far (the next
    batch's look-up trusts them before they are committed); new ones are added."""

    def __init__(
        self,
        prepared: Prepared,
        buffer: StepBuffer,
        *,
        verifier: PasswordVerifier,
        tweaks: TweakChecks,
        run_verdicts: dict[CheckKey, bool],
    ) -> None:
        self._prepared = prepared
        self._buffer = buffer
        self._verifier = verifier
        self._tweaks = tweaks
        self._run_verdicts = run_verdicts
        self._waiting: dict[CheckKey, list[Group]] = {}
        self._tweak_waits: list[CheckKey] = []
        self._jobs: list[TweakJob] = []

    async def verify(self) -> None:
        """Every group decided by a first verdict: those that need none at once, then the
        others as their pairs verify (broker-site leaks first)."""
        prepared, buffer = self._prepared, self._buffer
        buffer.expect(group.key for group in prepared.groups)
        for group in prepared.groups:
            if group.check is None:
                buffer.add(group.observe(group.status(None)))
            else:
                self._waiting.setdefault(group.check, []).append(group)
        for key, verified in prepared.known.items():
            self._decided(key, verified)
        keys = list(prepared.todo)
        if not keys:
            return

        def on_result(index: int, verified: bool) -> None:
            key = keys[index]
            self._run_verdicts[key] = verified
            buffer.verdict(key, verified)
            self._decided(key, verified)

        started = time.perf_counter()
        await self._verifier.verify_many([prepared.todo[k] for k in keys], on_result=on_result)
        prepared.counts.verify_seconds += time.perf_counter() - started
        prepared.counts.verifications += len(keys)

    def checking_tweaks(self) -> bool:
        """Whether a decided group waits for a tweak check (its escalation may follow)."""
        return bool(self._jobs or self._tweak_waits)

    async def check_tweaks(self) -> None:
        """The tweak checks this batch started (broker-site leaks first), and those of earlier
        batches its stale groups wait for; returns once every one has answered."""
        counts = self._prepared.counts
        broker = self._prepared.broker_checks
        jobs = sorted(self._jobs, key=lambda job: job.key not in broker)

        def on_answer(key: CheckKey, tweaked: bool) -> None:
            self._buffer.tweak_verdict(key, tweaked)
            counts.tweak_checks += 1
            counts.tweaked += tweaked

        if jobs:
            await self._tweaks.run(jobs, on_answer)
        for key in self._tweak_waits:
            await self._tweaks.wait(key)

    def _decided(self, key: CheckKey, verified: bool) -> None:
        groups = self._waiting.pop(key, [])
        if verified or not groups:
            for group in groups:
                self._buffer.add(group.observe(PasswordStatus.LIVE))
            return
        tweaked = self._prepared.tweaks_known.get(key)
        if tweaked is None:
            tweaked = self._tweaks.answer(key)
        for group in groups:
            self._buffer.add(group.observe(group.status(False, tweaked)))
        if tweaked is not None or not self._tweaks.enabled:
            return

        def on_answer(tweaked: bool) -> None:
            if tweaked:
                for group in groups:
                    self._buffer.escalate(group.observe(PasswordStatus.TWEAKED))

        self._tweak_waits.append(key)
        if self._tweaks.want(key, on_answer):
            enrolled_hash, leaked = self._prepared.secrets[key]
            self._jobs.append(TweakJob(key, enrolled_hash, leaked))
