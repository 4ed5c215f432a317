"""The case lifecycle: which case an exposure joins, what the case becomes, and whether a
case event is due (docs/decisions/cases.md).

A *case* is one customer incident: every exposure of a customer belongs to the customer's open
case, or opens a new one. A case's action and severity are the highest of its exposures.
Events are per case: one when a case opens with action ``notify`` or ``force_reset``, and one
each time its action rises above the highest action already announced (``announced_action``):
``none`` -> ``notify`` -> ``force_reset``. An exposure that joins at the same or a lower action
adds to the case and sends nothing.

Pure decisions over values, like :mod:`exposure.domain.lifecycle`: the store
(:mod:`exposure.store.cases`) persists them in the transaction that writes the exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from exposure.domain.lifecycle import EventKind, Observation
from exposure.domain.policy import Action, Severity

# A forced reset should be done within a day of being asked for: the weekly report's SLA
# breaches, the dashboard's and /metrics' overdue cases and the console's worklist clock.
RESET_SLA = timedelta(hours=24)


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseState:
    """What the store holds of an open case, as far as the lifecycle cares."""

    action: Action
    severity: Severity
    announced_action: Action | None
    force_reset_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseChange:
    """What one exposure decision does to the customer's open case (:func:`on_exposure`).

    ``opens``: no case was open, so this one opens a new case. ``state``: the case after the
    exposure joined. ``event``: why an event is due (None: nothing to send); when one is due,
    ``state.announced_action`` is the action it announces.
    """

    opens: bool
    state: CaseState
    event: EventKind | None

    @property
    def changed(self) -> bool:
        """Whether anything about the case moved (a store may skip the write otherwise)."""
        return self.opens or self.event is not None


def _announces(action: Action, announced: Action | None) -> bool:
    """An event is due when the action is worth telling and rises above what was told."""
    if action is Action.NONE:
        return False
    return announced is None or action.rank > announced.rank


def on_exposure(
    case: CaseState | None, *, action: Action, severity: Severity, at: datetime
) -> CaseChange:
    """An exposure with this decision (new, or a stored one that rose) joins ``case`` (the
    customer's open case) or, with ``case`` None, opens a new one at ``at``."""
    if case is None:
        due = _announces(action, None)
        return CaseChange(
            opens=True,
            state=CaseState(
                action=action,
                severity=severity,
                announced_action=action if due else None,
                force_reset_at=at if action is Action.FORCE_RESET else None,
            ),
            event=EventKind.OPENED if due else None,
        )
    top_action = action if action.rank > case.action.rank else case.action
    top_severity = severity if severity.rank > case.severity.rank else case.severity
    due = _announces(top_action, case.announced_action)
    force_reset_at = case.force_reset_at
    if force_reset_at is None and top_action is Action.FORCE_RESET:
        force_reset_at = at
    state = CaseState(
        action=top_action,
        severity=top_severity,
        announced_action=top_action if due else case.announced_action,
        force_reset_at=force_reset_at,
    )
    return CaseChange(
        opens=False,
        state=state,
        event=EventKind.ESCALATED if due else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseEventDue:
    """A case event the lifecycle decided on, for the outbox: the case and the action it
    announces, the exposure that triggered it (``observation``, with its stored ``source``
    and ``first_seen``), and every exposure of the case it covers."""

    kind: EventKind
    case_id: str
    action: Action
    exposure_id: str
    observation: Observation
    source: str
    first_seen: datetime
    exposure_ids: tuple[str, ...]
    recommended_actions: tuple[str, ...]

    @property
    def event_id(self) -> str:
        """The webhook-id, derived from the case state it announces: a case state can never
        get two events (a resumed ingest, a re-ingest, another replica), because the outbox's
        ``event_id`` is unique."""
        return f"msg_case_{self.case_id.replace('-', '')}_{self.action.value}"
