"""Webhook event bodies (DESIGN.md "Webhook (contract)").

Built once, when the exposure is created or escalated, and stored in the outbox as they will be
sent. A body never holds a plaintext identifier, a password or a link: the broker's own
systems reach the customer through channels the customer already trusts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exposure.clock import iso_utc


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureFacts:
    """What an exposure event says about an exposure."""

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


def exposure_event(facts: ExposureFacts, *, now: datetime) -> tuple[str, dict[str, Any]]:
    """The event type and body announcing a new or escalated exposure."""
    event_type = f"exposure.{facts.action}"
    body = {
        "type": event_type,
        "timestamp": iso_utc(now),
        "data": {
            "exposure_id": facts.exposure_id,
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
