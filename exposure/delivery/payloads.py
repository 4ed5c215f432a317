"""Webhook event bodies (docs/architecture.md, "Delivery"; the contract is the Standard
Webhooks body in the README).

Built once, when the lifecycle (:mod:`exposure.domain.lifecycle`) says an event is due, and
stored in the outbox as they will be sent. A body never holds a plaintext identifier, a
password or a link: the broker's own systems reach the customer through channels the customer
already trusts.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from exposure import JsonObject
from exposure.clock import iso_utc
from exposure.domain.cases import CaseEventDue
from exposure.store.outbox import NewEvent


def new_event_id() -> str:
    """A webhook-id: stable across every retry of one event."""
    return f"msg_{uuid.uuid4().hex}"


# One encoder for every body: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(body: JsonObject) -> str:
    return _ENCODER.encode(body)


def exposure_webhook(due: CaseEventDue, *, now: datetime) -> NewEvent:
    """The outbox event announcing a case that opened or whose action rose: the case, every
    exposure it covers and their recommended actions (the union), and the exposure that
    triggered it, described field by field. The type keeps its exposure-era name
    (``exposure.force_reset``, ``exposure.notify``) so receivers written against it keep
    working. Its webhook-id is derived from the case state it announces
    (:attr:`CaseEventDue.event_id`)."""
    obs = due.observation
    event_type = f"exposure.{due.action.value}"
    body: JsonObject = {
        "type": event_type,
        "timestamp": _iso(now),
        "data": {
            "case_id": due.case_id,
            "exposure_id": due.exposure_id,
            "exposure_ids": list(due.exposure_ids),
            "customer_id": obs.key.customer_id,
            "action": due.action.value,
            "severity": obs.decision.severity.value,
            "password_status": obs.password_status,
            "identifier_kind": obs.key.identifier_kind,
            "leak_type": obs.leak_type,
            "site_domain": obs.key.site_domain or None,
            "source": due.source,
            "first_seen": _iso(due.first_seen),
            "reason": obs.decision.reason,
            "recommended_actions": list(due.recommended_actions),
        },
    }
    return NewEvent(
        event_id=due.event_id,
        event_type=event_type,
        payload=_json(body),
        exposure_id=due.exposure_id,
        case_id=due.case_id,
    )


@functools.lru_cache(maxsize=16)
def _iso(moment: datetime) -> str:
    """:func:`iso_utc`, once per moment: every event of a batch has the same ``now``, and
    most the same ``first_seen``."""
    return iso_utc(moment)


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
