"""StepBuffer's steps in time: the first step of a batch goes at once, each next one gathers
what arrives for STEP_GATHER_SECONDS, and a closed batch's last step goes at once."""

from __future__ import annotations

import asyncio
import time

from exposure.domain.lifecycle import ExposureKey, Observation, SightingAt
from exposure.domain.policy import LeakType, MatchStrength, PasswordStatus, decide
from exposure.ingest.streaming import STEP_GATHER_SECONDS, Step, StepBuffer


def _observation(n: int) -> Observation:
    decision = decide(
        password_status=PasswordStatus.LIVE,
        broker_site=False,
        strength=MatchStrength.STRICT,
        leak_type=LeakType.COMBO,
    )
    return Observation(
        key=ExposureKey(f"C{n}", "email", bytes([n]) * 32, ""),
        strength="strict",
        password_status="live",
        decision=decision,
        leak_type="combo",
        has_pin=False,
        hint="c***@example.jp",
        sightings=[SightingAt(ordinal=n, file="", line_no=n, leak_type="combo")],
    )


def _customers(step: Step) -> list[str]:
    return sorted(o.key.customer_id for o in step.observations)


async def test_steps_after_the_first_gather_and_a_closed_batch_goes_at_once() -> None:
    buffer = StepBuffer()
    buffer.add(_observation(1))
    started = time.monotonic()
    first = await buffer.next_step()
    assert first is not None and _customers(first) == ["C1"]
    assert time.monotonic() - started < STEP_GATHER_SECONDS / 2  # at once

    async def arrive() -> None:  # two verdicts, tens of milliseconds apart
        for n in (2, 3):
            await asyncio.sleep(0.03)
            buffer.add(_observation(n))

    arriving = asyncio.create_task(arrive())
    second = await buffer.next_step()
    await arriving
    assert second is not None and _customers(second) == ["C2", "C3"]  # one step, not two
    assert time.monotonic() - started >= STEP_GATHER_SECONDS

    buffer.add(_observation(4))
    buffer.close()
    closed_at = time.monotonic()
    last = await buffer.next_step()
    assert last is not None and _customers(last) == ["C4"]
    assert time.monotonic() - closed_at < STEP_GATHER_SECONDS / 2  # done: no gathering
    assert await buffer.next_step() is None
