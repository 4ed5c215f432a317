"""What to do about one exposure: the contract table, plus severity and recommendations.

Action (contract; docs/architecture.md, "Policy")::

    password_status | broker-site leak | any other leak
    live            | force_reset      | force_reset
    tweaked         | force_reset      | force_reset
    unknown         | force_reset      | notify
    absent          | force_reset      | none
    stale           | notify           | notify

A variant-only match (e.g. Gmail dots) is at most ``notify`` unless the password is ``live`` or
``tweaked``: a verified current password (or a verified close variant of the leaked one) is
proof on its own, a look-alike identifier is not. A stolen session
cookie for a broker domain is a broker-site leak with status ``absent``, hence ``force_reset``.

Severity (our choice, not part of the contract):

* ``critical``: the leaked password, or a close variant of it (``tweaked``), is the customer's
  current password (always ``force_reset``): an attacker guesses such variants within a few
  tries, so a tweaked password is treated as a live one.
* ``high``: any other ``force_reset`` (broker-site leak, stolen broker session, unchecked password).
  A stolen session is not ``critical`` because we cannot tell whether it is still valid.
* ``medium``: ``notify``.
* ``low``: ``none`` (recorded for the report; no webhook is sent).

Recommended actions, always in this order, for the broker's reset service:

* ``force_reset``: ``reset_password``, ``revoke_sessions`` (whoever holds the password may
  already be logged in), ``reset_trading_pin`` when the leak carried a PIN,
  ``review_login_history``.
* ``notify``: ``revoke_sessions`` for a stolen session cookie, ``reset_trading_pin`` when the
  leak carried a PIN (a PIN cannot be checked, so it may well be current),
  ``review_login_history``, ``notify_customer`` (advise the customer not to reuse the password).
* ``none``: nothing.

Reasons are short fixed sentences; they never contain an identifier, a password or a site.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from exposure.dumps.records import LeakType

__all__ = [
    "Action",
    "Decision",
    "MatchStrength",
    "PasswordStatus",
    "Recommendation",
    "Severity",
    "decide",
    "escalates",
]


class PasswordStatus(StrEnum):
    """How the leaked password relates to the customer's enrolled password (contract)."""

    LIVE = "live"  # the leaked password verifies against the enrolled hash
    TWEAKED = "tweaked"  # it does not, but a small, common change of it does
    STALE = "stale"  # a hash is enrolled and neither the leaked password nor a tweak verifies
    UNKNOWN = "unknown"  # no (usable) hash is enrolled
    ABSENT = "absent"  # the leak carries no (usable) password


class Action(StrEnum):
    """What the broker should do; ordered ``none < notify < force_reset`` (see :attr:`rank`)."""

    FORCE_RESET = "force_reset"
    NOTIFY = "notify"
    NONE = "none"

    @property
    def rank(self) -> int:
        """0 for ``none``, 1 for ``notify``, 2 for ``force_reset``."""
        return _ACTION_RANK[self]


_ACTION_RANK: dict[Action, int] = {Action.NONE: 0, Action.NOTIFY: 1, Action.FORCE_RESET: 2}


def escalates(old: Action, new: Action) -> bool:
    """True when ``new`` is a stronger action than ``old`` (a new event must be sent)."""
    return new.rank > old.rank


class Severity(StrEnum):
    """How urgent an exposure is, for reports and the webhook payload."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for ``low`` up to 3 for ``critical``."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK: dict[Severity, int] = {
    Severity.LOW: 0,
    Severity.MEDIUM: 1,
    Severity.HIGH: 2,
    Severity.CRITICAL: 3,
}


class MatchStrength(StrEnum):
    """``strict``: strict identifier keys are equal; ``variant``: only variant keys are."""

    STRICT = "strict"
    VARIANT = "variant"


class Recommendation(StrEnum):
    """Vocabulary of ``recommended_actions`` in the webhook payload."""

    RESET_PASSWORD = "reset_password"  # noqa: S105 (an action name, not a password)
    REVOKE_SESSIONS = "revoke_sessions"
    RESET_TRADING_PIN = "reset_trading_pin"
    REVIEW_LOGIN_HISTORY = "review_login_history"
    NOTIFY_CUSTOMER = "notify_customer"


# Definition order of Recommendation is the order they appear in a payload.
_RECOMMENDATION_ORDER = tuple(Recommendation)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide`: action, severity, a short reason and recommendations."""

    action: Action
    severity: Severity
    reason: str
    recommended_actions: tuple[str, ...]


_ACTIONS: dict[tuple[PasswordStatus, bool], Action] = {
    # (password_status, broker_site) -> action; the contract table.
    (PasswordStatus.LIVE, True): Action.FORCE_RESET,
    (PasswordStatus.LIVE, False): Action.FORCE_RESET,
    (PasswordStatus.TWEAKED, True): Action.FORCE_RESET,
    (PasswordStatus.TWEAKED, False): Action.FORCE_RESET,
    (PasswordStatus.UNKNOWN, True): Action.FORCE_RESET,
    (PasswordStatus.UNKNOWN, False): Action.NOTIFY,
    (PasswordStatus.ABSENT, True): Action.FORCE_RESET,
    (PasswordStatus.ABSENT, False): Action.NONE,
    (PasswordStatus.STALE, True): Action.NOTIFY,
    (PasswordStatus.STALE, False): Action.NOTIFY,
}


# A verified password (the leaked one, or a tweak of it) is proof on its own.
_PROVEN = frozenset({PasswordStatus.LIVE, PasswordStatus.TWEAKED})


@functools.cache  # pure, over a few dozen possible inputs: a large dump decides each once
def decide(
    *,
    password_status: PasswordStatus,
    broker_site: bool,
    strength: MatchStrength,
    leak_type: LeakType,
    has_pin: bool = False,
) -> Decision:
    """Apply the contract table, the variant cap, and pick severity and recommendations.

    ``broker_site`` is :meth:`~exposure.domain.broker_sites.BrokerDomains.matches` of the
    record's site. ``has_pin``: the leak also carried a trading PIN.
    """
    action = _ACTIONS[(password_status, broker_site)]
    capped = (
        strength is MatchStrength.VARIANT
        and password_status not in _PROVEN
        and action.rank > Action.NOTIFY.rank
    )
    if capped:
        action = Action.NOTIFY
    stolen_session = leak_type is LeakType.SESSION_COOKIE
    return Decision(
        action=action,
        severity=_severity(action, password_status),
        reason=_reason(password_status, broker_site, stolen_session, capped, has_pin),
        recommended_actions=_recommendations(action, stolen_session, has_pin),
    )


def _severity(action: Action, status: PasswordStatus) -> Severity:
    if status in _PROVEN:
        return Severity.CRITICAL
    if action is Action.FORCE_RESET:
        return Severity.HIGH
    if action is Action.NOTIFY:
        return Severity.MEDIUM
    return Severity.LOW


def _recommendations(action: Action, stolen_session: bool, has_pin: bool) -> tuple[str, ...]:
    if action is Action.NONE:
        return ()
    wanted: set[Recommendation] = {Recommendation.REVIEW_LOGIN_HISTORY}
    if action is Action.FORCE_RESET:
        wanted |= {Recommendation.RESET_PASSWORD, Recommendation.REVOKE_SESSIONS}
    else:
        wanted.add(Recommendation.NOTIFY_CUSTOMER)
    if stolen_session:
        wanted.add(Recommendation.REVOKE_SESSIONS)
    if has_pin:
        wanted.add(Recommendation.RESET_TRADING_PIN)
    return tuple(str(r) for r in _RECOMMENDATION_ORDER if r in wanted)


_BASE_REASONS: dict[PasswordStatus, str] = {
    PasswordStatus.LIVE: "leaked password is the customer's current password",
    # Never which variant: the reason goes into webhooks, reports and the database.
    PasswordStatus.TWEAKED: "a close variant of a leaked password is the customer's current "
    "password",
    PasswordStatus.STALE: "leaked password is not the customer's current password",
    PasswordStatus.UNKNOWN: "leaked password could not be checked: no password hash is enrolled",
    PasswordStatus.ABSENT: "identifier leaked without a usable password",
}


def _reason(
    status: PasswordStatus, broker_site: bool, stolen_session: bool, capped: bool, has_pin: bool
) -> str:
    if stolen_session and status is PasswordStatus.ABSENT:
        text = "a login session was stolen (session cookie leak)"
    else:
        text = _BASE_REASONS[status]
    if broker_site:
        text += " (broker-site leak)"
    if capped:
        text += "; matched only through an identifier variant, so a reset is not forced"
    if has_pin:
        text += "; the leak also carried a trading PIN"
    return text
