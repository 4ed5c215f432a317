"""The case lifecycle, from tables: open or join, the case's action and severity, and which
case event is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exposure.domain.cases import CaseState, on_exposure
from exposure.domain.lifecycle import EventKind
from exposure.domain.policy import Action, Severity

N, NO, F = Action.NONE, Action.NOTIFY, Action.FORCE_RESET
LOW, MED, HIGH, CRIT = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL
T0 = datetime(2025, 5, 12, 1, 2, 3, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def _case(
    action: Action, severity: Severity, announced: Action | None, forced: datetime | None = None
) -> CaseState:
    return CaseState(
        action=action, severity=severity, announced_action=announced, force_reset_at=forced
    )


@pytest.mark.parametrize(
    ("action", "severity", "event", "announced", "forced"),
    [
        (N, LOW, None, None, None),
        (NO, MED, EventKind.OPENED, NO, None),
        (F, CRIT, EventKind.OPENED, F, T0),
    ],
)
def test_an_exposure_of_a_customer_without_an_open_case_opens_one(
    action: Action,
    severity: Severity,
    event: EventKind | None,
    announced: Action | None,
    forced: datetime | None,
) -> None:
    change = on_exposure(None, action=action, severity=severity, at=T0)
    assert change.opens
    assert change.changed
    assert change.event is event
    assert change.state == _case(action, severity, announced, forced)


@pytest.mark.parametrize(
    ("case", "action", "severity", "after", "event"),
    [
        # Same or lower action: the case absorbs it, nothing to send.
        (_case(F, CRIT, F, T0), F, CRIT, _case(F, CRIT, F, T0), None),
        (_case(F, HIGH, F, T0), NO, MED, _case(F, HIGH, F, T0), None),
        (_case(F, HIGH, F, T0), N, LOW, _case(F, HIGH, F, T0), None),
        (_case(NO, MED, NO), NO, MED, _case(NO, MED, NO), None),
        (_case(NO, MED, NO), N, LOW, _case(NO, MED, NO), None),
        # A higher severity at the same action raises the case's severity, silently.
        (_case(F, HIGH, F, T0), F, CRIT, _case(F, CRIT, F, T0), None),
        (_case(NO, LOW, NO), NO, HIGH, _case(NO, HIGH, NO), None),
        # The action rises above what was announced: the escalation is due, once.
        (_case(NO, MED, NO), F, CRIT, _case(F, CRIT, F, T1), EventKind.ESCALATED),
        (_case(N, LOW, None), NO, MED, _case(NO, MED, NO), EventKind.ESCALATED),
        (_case(N, LOW, None), F, HIGH, _case(F, HIGH, F, T1), EventKind.ESCALATED),
        (_case(N, LOW, None), N, MED, _case(N, MED, None), None),
    ],
)
def test_an_exposure_joins_the_open_case_and_only_a_rising_action_sends(
    case: CaseState,
    action: Action,
    severity: Severity,
    after: CaseState,
    event: EventKind | None,
) -> None:
    change = on_exposure(case, action=action, severity=severity, at=T1)
    assert not change.opens
    assert change.state == after
    assert change.event is event
    assert change.changed is (event is not None)


def test_force_reset_at_is_when_the_action_first_became_force_reset() -> None:
    opened = on_exposure(None, action=NO, severity=MED, at=T0).state
    raised = on_exposure(opened, action=F, severity=HIGH, at=T1).state
    again = on_exposure(raised, action=F, severity=CRIT, at=T1 + timedelta(days=1)).state
    assert opened.force_reset_at is None
    assert raised.force_reset_at == T1
    assert again.force_reset_at == T1


def test_a_case_is_announced_once_per_action_whatever_the_order_of_its_exposures() -> None:
    decisions = [(NO, MED), (N, LOW), (F, HIGH), (NO, HIGH), (F, CRIT), (F, HIGH)]
    case: CaseState | None = None
    events = []
    for action, severity in decisions:
        change = on_exposure(case, action=action, severity=severity, at=T0)
        if change.event is not None:
            events.append((change.event, change.state.announced_action))
        case = change.state
    assert events == [(EventKind.OPENED, NO), (EventKind.ESCALATED, F)]
    assert case == _case(F, CRIT, F, T0)
