"""Webhook event bodies (docs/architecture.md, "Delivery"; the contract is the Standard
Webhooks body in the README).

Built once, when the lifecycle (:mod:`exposure.domain.lifecycle`) says an event is due, and
stored in the outbox as they will be sent. A body never holds a plaintext identifier, a
password or a link: the broker's own systems reach the customer through channels the customer
already trusts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exposure import JsonObject
from exposure.clock import iso_utc
from exposure.domain.cases import CaseEventDue
from exposure.store.outbox import NewEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureFacts:
    """What a case event says: the case, every exposure it covers and their recommended
    actions (the union), and the exposure that triggered it, described field by field."""

    case_id: str
    exposure_ids: Sequence[str]
    exposure_id: str
    customer_id: str
    action: str
    severity: str
    password_status: str
    identifier_kind: str
    leak_type: str
    site_domain: str | None
    source: str
    first_seen: datetime
    reason: str
    recommended_actions: Sequence[str]


def new_event_id() -> str:
    """A webhook-id: stable across every retry of one event."""
    return f"msg_{uuid.uuid4().hex}"


def exposure_event(facts: ExposureFacts, *, now: datetime) -> tuple[str, JsonObject]:
    """The event type and body announcing a case that opened or whose action rose. The type
    keeps its exposure-era name (``exposure.force_reset``, ``exposure.notify``) so receivers
    written against it keep working."""
    event_type = f"exposure.{facts.action}"
    body: JsonObject = {
        "type": event_type,
        "timestamp": iso_utc(now),
        "data": {
            "case_id": facts.case_id,
            "exposure_id": facts.exposure_id,
            "exposure_ids": list(facts.exposure_ids),
            "customer_id": facts.customer_id,
            "action": facts.action,
            "severity": facts.severity,
            "password_status": facts.password_status,
            "identifier_kind": facts.identifier_kind,
            "leak_type": facts.leak_type,
            "site_domain": facts.site_domain,
            "source": facts.source,
            "first_seen": iso_utc(facts.first_seen),
            "reason": facts.reason,
            "recommended_actions": list(facts.recommended_actions),
        },
    }
    return event_type, body


# One encoder for every body: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(body: JsonObject) -> str:
    return _ENCODER.encode(body)


def exposure_webhook(due: CaseEventDue, *, now: datetime) -> NewEvent:
    """The outbox event announcing a case that opened or whose action rose. Its webhook-id
    is derived from the case state it announces (:attr:`CaseEventDue.event_id`)."""
    obs = due.observation
    facts = ExposureFacts(
        case_id=due.case_id,
        exposure_ids=due.exposure_ids,
        exposure_id=due.exposure_id,
        customer_id=obs.key.customer_id,
        action=due.action.value,
        severity=obs.decision.severity.value,
        password_status=obs.password_status,
        identifier_kind=obs.key.identifier_kind,
        leak_type=obs.leak_type,
        site_domain=obs.key.site_domain or None,
        source=due.source,
        first_seen=due.first_seen,
        reason=obs.decision.reason,
        recommended_actions=due.recommended_actions,
    )
    event_type, body = exposure_event(facts, now=now)
    return NewEvent(
        event_id=due.event_id,
        event_type=event_type,
        payload=_json(body),
        exposure_id=due.exposure_id,
        case_id=due.case_id,
    )


def report_webhook(week: object, figures: Mapping[str, Any], *, now: datetime) -> NewEvent:
    """The ``report.weekly`` event announcing a weekly report: the week, its period and the
    headline counts only (no exposure list, no identifier, no link). Its id is derived from
    the week, so a second run for the same week (another replica, a restart) is recognised."""
    body: JsonObject = {
        "type": "report.weekly",
        "timestamp": iso_utc(now),
        "data": {
            "week": str(week),
            "period": figures.get("period"),
            "headline": figures.get("headline"),
        },
    }
    return NewEvent(event_id=f"msg_report_{week}", event_type="report.weekly", payload=_json(body))
