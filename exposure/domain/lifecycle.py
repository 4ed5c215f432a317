"""The exposure lifecycle: what a new observation changes, and whether an event is due
(docs/architecture.md, "Exposure lifecycle").

Pure decisions over values; the store (:mod:`exposure.store.exposures`) persists what they
decide, and the webhook body is :mod:`exposure.delivery.payloads`' to build.

An *exposure* is one (customer, identifier kind, leaked-password fingerprint, site): see
:class:`ExposureKey`. An *observation* is what one batch learned about one key: the strongest
evidence among its records (:meth:`Observation.rank`) and every place it was seen. Then:

* a key never seen before opens an exposure (state ``open``); an event is due when its action
  is ``notify`` or ``force_reset`` (:func:`on_open`);
* a key seen before bumps ``last_seen`` and ``occurrences``; stronger evidence (a higher rank:
  action, then severity, then a strict over a variant match) replaces the stored decision;
  an event is due only when the *action* rises (``none`` -> ``notify`` -> ``force_reset``), and
  such an escalation reopens an exposure that was resolved (:func:`on_sighting`).

The decisions return small frozen values (:class:`Change`, :class:`EventDue`) rather than
writing anything, so they are tested from tables (``tests/unit/test_lifecycle.py``). A case
lifecycle (one case per customer incident) sits beside this one the same way: given the
stored case and an exposure's change, a pure function says what the case becomes and whether
a case event is due, and the store persists it in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from exposure.domain.policy import Action, Decision, Severity, escalates

OPEN = "open"


@dataclass(frozen=True, slots=True)
class ExposureKey:
    """The contract's identity of an exposure (empty bytes / string for "none")."""

    customer_id: str
    identifier_kind: str
    password_fp: bytes = field(repr=False)
    site_domain: str


@dataclass(frozen=True, slots=True)
class SightingAt:
    """One place an exposure was seen: the run's ordinal, the file (member) and its line."""

    ordinal: int
    file: str
    line_no: int
    leak_type: str


def rank(action: Action, severity: Severity, strength: str) -> tuple[int, int, int]:
    """How strong a decision is: action first, then severity, then a strict over a variant
    match. Stronger evidence replaces weaker, never the other way round."""
    return (action.rank, severity.rank, 1 if strength == "strict" else 0)


@dataclass(slots=True)
class Observation:
    """Everything one batch learned about one exposure key: the strongest decision among its
    records, and every place it was seen (filled in as the batch is read)."""

    key: ExposureKey
    strength: str
    password_status: str
    decision: Decision
    leak_type: str
    has_pin: bool
    hint: str
    sightings: list[SightingAt] = field(default_factory=list)

    def rank(self) -> tuple[int, int, int]:
        return rank(self.decision.action, self.decision.severity, self.strength)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureState:
    """What the store holds of an exposure, as far as the lifecycle cares."""

    action: Action
    severity: Severity
    strength: str
    state: str  # "open", or the resolution that closed it ("reset_completed", "dismissed")
    has_pin: bool

    def rank(self) -> tuple[int, int, int]:
        return rank(self.action, self.severity, self.strength)


class EventKind(StrEnum):
    """Why an event is due: an exposure (later: a case) opened, or its action rose."""

    OPENED = "opened"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What one observation does to a stored exposure (:func:`on_sighting`).

    ``adopt``: its decision replaces the stored one (``has_pin`` is then the merged flag).
    ``escalated``: the action rose, so an event is due. ``reopen``: the exposure was resolved
    and opens again (stronger evidence after a resolution: the reset service must act anew).
    """

    adopt: bool
    escalated: bool
    reopen: bool
    has_pin: bool

    @property
    def event(self) -> EventKind | None:
        return EventKind.ESCALATED if self.escalated else None


def on_open(observation: Observation) -> EventKind | None:
    """A new exposure: an event is due unless its action is ``none`` (recorded, reported)."""
    return EventKind.OPENED if observation.decision.action is not Action.NONE else None


def on_sighting(stored: ExposureState, observation: Observation) -> Change:
    """A known exposure seen again: see the module documentation for the rules."""
    adopt = observation.rank() > stored.rank()
    escalated = escalates(stored.action, observation.decision.action)
    return Change(
        adopt=adopt,
        escalated=escalated,
        reopen=escalated and stored.state != OPEN,
        has_pin=(observation.has_pin or stored.has_pin) if adopt else stored.has_pin,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDue:
    """An event the lifecycle decided on, for the outbox: which exposure, on what evidence,
    and the stored facts the body states (its source and first sighting)."""

    kind: EventKind
    exposure_id: str
    observation: Observation
    source: str
    first_seen: datetime
