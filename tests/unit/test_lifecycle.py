"""The exposure lifecycle, from tables: what an observation changes and which event is due."""

from __future__ import annotations

import pytest

from exposure.domain.lifecycle import (
    EventKind,
    ExposureKey,
    ExposureState,
    Observation,
    on_open,
    on_sighting,
)
from exposure.domain.policy import Action, Decision, Severity

KEY = ExposureKey("C1", "email", b"\x01" * 32, "")


def _observation(
    action: Action, severity: Severity, strength: str = "strict", *, has_pin: bool = False
) -> Observation:
    decision = Decision(action, severity, "a reason", ())
    return Observation(KEY, strength, "live", decision, "combo", has_pin, "c***@example.jp")


def _stored(
    action: Action,
    severity: Severity,
    strength: str = "strict",
    *,
    state: str = "open",
    has_pin: bool = False,
) -> ExposureState:
    return ExposureState(
        action=action, severity=severity, strength=strength, state=state, has_pin=has_pin
    )


N, NO, F = Action.NONE, Action.NOTIFY, Action.FORCE_RESET
LOW, MED, HIGH, CRIT = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


@pytest.mark.parametrize(
    ("action", "severity", "event"),
    [(N, LOW, None), (NO, MED, EventKind.OPENED), (F, HIGH, EventKind.OPENED)],
)
def test_a_new_exposure_announces_itself_unless_its_action_is_none(
    action: Action, severity: Severity, event: EventKind | None
) -> None:
    assert on_open(_observation(action, severity)) is event


@pytest.mark.parametrize(
    ("stored", "seen", "adopt", "escalated", "reopen"),
    [
        # the same evidence again: counters only
        (_stored(NO, MED), _observation(NO, MED), False, False, False),
        # weaker evidence never replaces stronger
        (_stored(F, CRIT), _observation(NO, MED), False, False, False),
        (_stored(NO, MED, "strict"), _observation(NO, MED, "variant"), False, False, False),
        # stronger at the same action: adopted, no event
        (_stored(F, HIGH), _observation(F, CRIT), True, False, False),
        (_stored(NO, MED, "variant"), _observation(NO, MED, "strict"), True, False, False),
        # the action rises: adopted, an event
        (_stored(N, LOW), _observation(NO, MED), True, True, False),
        (_stored(NO, MED), _observation(F, HIGH), True, True, False),
        # ... and a resolved exposure opens again
        (_stored(NO, MED, state="dismissed"), _observation(F, CRIT), True, True, True),
        (_stored(F, HIGH, state="reset_completed"), _observation(F, CRIT), True, False, False),
        (_stored(NO, MED, state="dismissed"), _observation(NO, MED), False, False, False),
    ],
)
def test_a_known_exposure_seen_again(
    stored: ExposureState, seen: Observation, adopt: bool, escalated: bool, reopen: bool
) -> None:
    change = on_sighting(stored, seen)
    assert (change.adopt, change.escalated, change.reopen) == (adopt, escalated, reopen)
    assert change.event is (EventKind.ESCALATED if escalated else None)


@pytest.mark.parametrize(
    ("stored_pin", "seen_pin", "stronger", "merged"),
    [
        (False, True, True, True),
        (True, False, True, True),  # a PIN once leaked stays leaked
        (False, True, False, False),  # weaker evidence changes nothing stored
        (True, False, False, True),
    ],
)
def test_the_pin_flag_merges_when_the_evidence_is_adopted(
    stored_pin: bool, seen_pin: bool, stronger: bool, merged: bool
) -> None:
    stored = _stored(NO, MED, has_pin=stored_pin)
    seen = _observation(F if stronger else NO, HIGH if stronger else MED, has_pin=seen_pin)
    assert on_sighting(stored, seen).has_pin is merged


def test_an_observation_ranks_action_then_severity_then_strength() -> None:
    ranked = sorted(
        [
            _observation(F, HIGH, "variant"),
            _observation(NO, MED, "strict"),
            _observation(F, CRIT, "variant"),
            _observation(F, HIGH, "strict"),
            _observation(N, LOW, "strict"),
        ],
        key=Observation.rank,
    )
    assert [(o.decision.action, o.decision.severity, o.strength) for o in ranked] == [
        (N, LOW, "strict"),
        (NO, MED, "strict"),
        (F, HIGH, "variant"),
        (F, HIGH, "strict"),
        (F, CRIT, "variant"),
    ]
