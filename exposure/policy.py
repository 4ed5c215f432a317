"""What to do about one exposure: the contract table, plus severity and recommendations.

Action (contract, DESIGN.md "Password status and policy")::

    password_status | broker-site leak | any other leak
    live            | force_reset      | force_reset
    unknown         | force_reset      | notify
    absent          | force_reset      | none
    stale           | notify           | notify

A variant-only match (e.g. Gmail dots) is at most ``notify`` unless the password is ``live``: a
verified current password is proof on its own, a look-alike identifier is not. A stolen session
cookie for a broker domain is a broker-site leak with status ``absent``, hence ``force_reset``.

Severity (our choice, not part of the contract):

* ``critical``: the leaked password is the customer's current password (always ``force_reset``).
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
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

import idna

from exposure.dumps.records import LeakType
from exposure.errors import ConfigurationError

__all__ = [
    "Action",
    "BrokerDomains",
    "Decision",
    "MatchStrength",
    "PasswordStatus",
    "Recommendation",
    "Severity",
    "decide",
    "escalates",
]

BROKER_DOMAINS_VARIABLE = "EXPOSURE_BROKER_DOMAINS"


class PasswordStatus(StrEnum):
    """How the leaked password relates to the customer's enrolled password (contract)."""

    LIVE = "live"  # the leaked password verifies against the enrolled argon2 hash
    STALE = "stale"  # a hash is enrolled and the leaked password does not verify
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
class BrokerDomains:
    """The broker's own domains; a site on one of them or a subdomain is a broker site.

    Build it with :meth:`parse`. ``domains`` holds lower-case ASCII (punycode) names without
    leading or trailing dots; constructing it directly with anything else raises
    :class:`~exposure.errors.ConfigurationError`, because such a set would silently never match.
    """

    domains: frozenset[str]

    def __post_init__(self) -> None:
        for domain in self.domains:
            if _canonical_domain(domain) != domain:
                raise ConfigurationError(
                    BROKER_DOMAINS_VARIABLE,
                    f"{_shown(domain)} is not in canonical form; use BrokerDomains.parse",
                )

    @classmethod
    def parse(cls, value: str) -> BrokerDomains:
        """Read a comma-separated list such as ``mirai-sec.co.jp, .Trade.Example., みらい証券.jp``.

        Entries are trimmed and lower-cased; a leading and a trailing dot are dropped; IDN names
        become punycode (IDNA 2008 with UTS 46 mapping, so ``。`` and full-width letters work).
        Empty entries (``a.jp,,b.jp`` or a trailing comma) are ignored and a blank value gives an
        empty set; whether the setting is required is the settings module's call. URLs, ports,
        wildcards, IP addresses and single-label names are rejected with a message saying why.
        """
        entries = (entry.strip() for entry in value.split(","))
        return cls(frozenset(_canonical_domain(entry) for entry in entries if entry))

    def matches(self, site: str | None) -> bool:
        """True if ``site`` (a host name, no port) is a broker domain or a subdomain of one.

        Only whole labels count: ``mirai-sec.co.jp.evil.example`` and ``evilmirai-sec.co.jp``
        are not ``mirai-sec.co.jp``. Case-insensitive, one trailing dot tolerated, Unicode host
        names converted to punycode. Costs one set lookup per label of ``site``.
        """
        if not site or not self.domains:
            return False
        host = site.strip().lower()
        if host.endswith("."):
            host = host[:-1]
        if not host.isascii():
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError:
                return False  # not a valid host name, so not one of ours
        while True:
            if host in self.domains:
                return True
            dot = host.find(".")
            if dot < 0:
                return False
            host = host[dot + 1 :]


def _shown(entry: str) -> str:
    """An entry quoted for an error message; broker domains are configuration, not secrets."""
    return repr(entry if len(entry) <= 80 else entry[:77] + "...")


def _canonical_domain(entry: str) -> str:
    """One configured broker domain in canonical form, or ConfigurationError saying why not."""

    def reject(problem: str) -> ConfigurationError:
        return ConfigurationError(BROKER_DOMAINS_VARIABLE, f"{_shown(entry)} {problem}")

    if "://" in entry or "/" in entry:
        raise reject("looks like a URL; give bare host names such as mirai-sec.co.jp")
    if "*" in entry:
        raise reject("has a wildcard; subdomains are always included, so drop the '*.'")
    if ":" in entry or "[" in entry:
        raise reject("has a port or an IPv6 literal; give bare domain names")
    if "@" in entry:
        raise reject("looks like an e-mail address; give bare domain names")
    name = entry.strip().lower()
    if name.startswith("."):
        name = name[1:]
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise reject("is empty")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise reject(f"is not a valid domain name ({type(exc).__name__})") from None
    try:
        ipaddress.ip_address(ascii_name)
    except ValueError:
        pass
    else:
        raise reject("is an IP address; give domain names")
    labels = ascii_name.split(".")
    if len(labels) < 2:
        # A bare label (`jp`, `localhost`) would make every site under it a broker site.
        raise reject("is a single label; give the broker's registered domain")
    if labels[-1].isdigit():
        raise reject("does not end in a top-level domain")
    return ascii_name


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
    (PasswordStatus.UNKNOWN, True): Action.FORCE_RESET,
    (PasswordStatus.UNKNOWN, False): Action.NOTIFY,
    (PasswordStatus.ABSENT, True): Action.FORCE_RESET,
    (PasswordStatus.ABSENT, False): Action.NONE,
    (PasswordStatus.STALE, True): Action.NOTIFY,
    (PasswordStatus.STALE, False): Action.NOTIFY,
}


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

    ``broker_site`` is :meth:`BrokerDomains.matches` of the record's site. ``has_pin``: the
    leak also carried a trading PIN.
    """
    action = _ACTIONS[(password_status, broker_site)]
    capped = (
        strength is MatchStrength.VARIANT
        and password_status is not PasswordStatus.LIVE
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
    if status is PasswordStatus.LIVE:
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
