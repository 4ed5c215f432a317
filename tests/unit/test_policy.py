"""Policy: the contract table, the variant cap, severity, recommendations, broker domains."""

from __future__ import annotations

import itertools

import pytest

from exposure.domain.broker_sites import BrokerDomains
from exposure.domain.policy import (
    Action,
    Decision,
    MatchStrength,
    PasswordStatus,
    Recommendation,
    Severity,
    decide,
    escalates,
)
from exposure.dumps.records import LeakType
from exposure.errors import ConfigurationError

LIVE, TWEAKED, STALE, UNKNOWN, ABSENT = (
    PasswordStatus.LIVE,
    PasswordStatus.TWEAKED,
    PasswordStatus.STALE,
    PasswordStatus.UNKNOWN,
    PasswordStatus.ABSENT,
)
FORCE, NOTIFY, NONE = Action.FORCE_RESET, Action.NOTIFY, Action.NONE

# The contract table, written out independently of the module's own copy.
CONTRACT = {
    (LIVE, True): FORCE,
    (LIVE, False): FORCE,
    (TWEAKED, True): FORCE,
    (TWEAKED, False): FORCE,
    (UNKNOWN, True): FORCE,
    (UNKNOWN, False): NOTIFY,
    (ABSENT, True): FORCE,
    (ABSENT, False): NONE,
    (STALE, True): NOTIFY,
    (STALE, False): NOTIFY,
}
ALL_CELLS = list(itertools.product(PasswordStatus, [True, False]))


def _decide(
    status: PasswordStatus,
    broker_site: bool,
    strength: MatchStrength = MatchStrength.STRICT,
    leak_type: LeakType = LeakType.COMBO,
    has_pin: bool = False,
) -> Decision:
    return decide(
        password_status=status,
        broker_site=broker_site,
        strength=strength,
        leak_type=leak_type,
        has_pin=has_pin,
    )


def test_contract_table_covers_every_cell() -> None:
    assert set(CONTRACT) == set(ALL_CELLS)


@pytest.mark.parametrize(("status", "broker_site"), ALL_CELLS)
def test_strict_match_follows_the_contract_table(status: PasswordStatus, broker_site: bool) -> None:
    assert _decide(status, broker_site).action is CONTRACT[(status, broker_site)]


@pytest.mark.parametrize("leak_type", list(LeakType))
@pytest.mark.parametrize(("status", "broker_site"), ALL_CELLS)
def test_action_does_not_depend_on_leak_type(
    status: PasswordStatus, broker_site: bool, leak_type: LeakType
) -> None:
    decision = _decide(status, broker_site, leak_type=leak_type)
    assert decision.action is CONTRACT[(status, broker_site)]


@pytest.mark.parametrize(
    ("status", "broker_site", "expected"),
    [
        (LIVE, True, FORCE),  # live is proof: the cap does not apply
        (LIVE, False, FORCE),
        (TWEAKED, True, FORCE),  # a verified variant is proof too
        (TWEAKED, False, FORCE),
        (UNKNOWN, True, NOTIFY),  # capped from force_reset
        (UNKNOWN, False, NOTIFY),
        (ABSENT, True, NOTIFY),  # capped from force_reset
        (ABSENT, False, NONE),  # the cap never raises an action
        (STALE, True, NOTIFY),
        (STALE, False, NOTIFY),
    ],
)
def test_variant_match_is_at_most_notify_unless_live_or_tweaked(
    status: PasswordStatus, broker_site: bool, expected: Action
) -> None:
    decision = _decide(status, broker_site, MatchStrength.VARIANT)
    assert decision.action is expected
    capped = CONTRACT[(status, broker_site)] is not expected
    assert ("identifier variant" in decision.reason) is capped


def test_session_cookie_for_broker_domain_forces_reset_and_revokes_sessions() -> None:
    decision = _decide(ABSENT, True, leak_type=LeakType.SESSION_COOKIE)
    assert decision.action is FORCE
    assert decision.severity is Severity.HIGH
    assert "revoke_sessions" in decision.recommended_actions
    assert "reset_password" in decision.recommended_actions
    assert "session" in decision.reason


def test_session_cookie_on_variant_match_still_revokes_sessions() -> None:
    decision = _decide(ABSENT, True, MatchStrength.VARIANT, LeakType.SESSION_COOKIE)
    assert decision.action is NOTIFY
    assert "revoke_sessions" in decision.recommended_actions
    assert "reset_password" not in decision.recommended_actions


def test_session_cookie_for_other_site_is_none() -> None:
    decision = _decide(ABSENT, False, leak_type=LeakType.SESSION_COOKIE)
    assert decision.action is NONE
    assert decision.recommended_actions == ()


@pytest.mark.parametrize(
    ("status", "broker_site", "strength", "severity"),
    [
        (LIVE, False, MatchStrength.STRICT, Severity.CRITICAL),
        (LIVE, True, MatchStrength.STRICT, Severity.CRITICAL),
        (LIVE, False, MatchStrength.VARIANT, Severity.CRITICAL),
        (TWEAKED, False, MatchStrength.STRICT, Severity.CRITICAL),  # as for a live password
        (TWEAKED, True, MatchStrength.STRICT, Severity.CRITICAL),
        (TWEAKED, False, MatchStrength.VARIANT, Severity.CRITICAL),
        (UNKNOWN, True, MatchStrength.STRICT, Severity.HIGH),
        (ABSENT, True, MatchStrength.STRICT, Severity.HIGH),
        (UNKNOWN, False, MatchStrength.STRICT, Severity.MEDIUM),
        (STALE, True, MatchStrength.STRICT, Severity.MEDIUM),
        (ABSENT, True, MatchStrength.VARIANT, Severity.MEDIUM),
        (ABSENT, False, MatchStrength.STRICT, Severity.LOW),
    ],
)
def test_severity(
    status: PasswordStatus, broker_site: bool, strength: MatchStrength, severity: Severity
) -> None:
    assert _decide(status, broker_site, strength).severity is severity


def test_force_reset_recommendations_in_payload_order() -> None:
    decision = _decide(LIVE, False)
    assert decision.recommended_actions == (
        "reset_password",
        "revoke_sessions",
        "review_login_history",
    )


@pytest.mark.parametrize("broker_site", [True, False])
def test_tweaked_forces_a_reset_and_says_so_without_saying_which(broker_site: bool) -> None:
    decision = _decide(TWEAKED, broker_site)
    assert decision.recommended_actions == _decide(LIVE, broker_site).recommended_actions
    assert decision.reason.startswith("a close variant of a leaked password is the customer's")
    assert decision.reason != _decide(LIVE, broker_site).reason


def test_notify_recommendations() -> None:
    decision = _decide(STALE, False)
    assert decision.recommended_actions == ("review_login_history", "notify_customer")


@pytest.mark.parametrize(("status", "broker_site"), ALL_CELLS)
def test_trading_pin_reset_recommended_whenever_action_is_taken(
    status: PasswordStatus, broker_site: bool
) -> None:
    with_pin = _decide(status, broker_site, has_pin=True)
    without = _decide(status, broker_site)
    assert "reset_trading_pin" not in without.recommended_actions
    if with_pin.action is NONE:
        assert with_pin.recommended_actions == ()
    else:
        assert "reset_trading_pin" in with_pin.recommended_actions
        assert "trading PIN" in with_pin.reason
    assert with_pin.action is without.action


@pytest.mark.parametrize("strength", list(MatchStrength))
@pytest.mark.parametrize("leak_type", list(LeakType))
@pytest.mark.parametrize(("status", "broker_site"), ALL_CELLS)
def test_decisions_are_well_formed(
    status: PasswordStatus, broker_site: bool, leak_type: LeakType, strength: MatchStrength
) -> None:
    for has_pin in (False, True):
        decision = _decide(status, broker_site, strength, leak_type, has_pin)
        vocabulary = [str(r) for r in Recommendation]
        assert all(r in vocabulary for r in decision.recommended_actions)
        # Stable order, no duplicates.
        indexes = [vocabulary.index(r) for r in decision.recommended_actions]
        assert indexes == sorted(set(indexes))
        assert (decision.action is NONE) == (decision.recommended_actions == ())
        assert ("reset_password" in decision.recommended_actions) == (decision.action is FORCE)
        assert ("broker-site leak" in decision.reason) is broker_site
        assert decision.reason and "\n" not in decision.reason


def test_action_order_and_escalation() -> None:
    assert [a.rank for a in (NONE, NOTIFY, FORCE)] == [0, 1, 2]
    assert escalates(NOTIFY, FORCE)
    assert escalates(NONE, NOTIFY)
    assert escalates(NONE, FORCE)
    assert not escalates(FORCE, NOTIFY)
    assert not escalates(NOTIFY, NOTIFY)
    assert not escalates(FORCE, FORCE)


def test_enums_serialise_as_contract_strings() -> None:
    assert [str(s) for s in PasswordStatus] == ["live", "tweaked", "stale", "unknown", "absent"]
    assert {str(a) for a in Action} == {"force_reset", "notify", "none"}
    assert {str(s) for s in Severity} == {"critical", "high", "medium", "low"}
    assert {str(s) for s in MatchStrength} == {"strict", "variant"}


# --- broker domains -----------------------------------------------------------------------

BROKER = BrokerDomains.parse(" Mirai-Sec.co.jp , .trade.example.,みらい証券.jp,")


def test_parse_normalises_entries() -> None:
    assert BROKER.domains == frozenset(
        {"mirai-sec.co.jp", "trade.example", "xn--n8j6f4a368ztszd.jp"}
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", frozenset()),
        (" , ", frozenset()),
        ("ＭＩＲＡＩ-sec.co.jp", frozenset({"mirai-sec.co.jp"})),  # full width (UTS 46)
        ("みらい証券。jp", frozenset({"xn--n8j6f4a368ztszd.jp"})),  # ideographic full stop
        ("xn--n8j6f4a368ztszd.jp", frozenset({"xn--n8j6f4a368ztszd.jp"})),
        ("a.example,A.EXAMPLE", frozenset({"a.example"})),
    ],
)
def test_parse_accepts(value: str, expected: frozenset[str]) -> None:
    assert BrokerDomains.parse(value).domains == expected


@pytest.mark.parametrize(
    "value",
    [
        "https://mirai-sec.co.jp",
        "mirai-sec.co.jp/login",
        "mirai-sec.co.jp:443",
        "*.mirai-sec.co.jp",
        "ops@mirai-sec.co.jp",
        "192.0.2.1",
        "[2001:db8::1]",
        "localhost",
        "jp",
        "mirai sec.co.jp",
        "mirai_sec.co.jp",
        "-mirai.co.jp",
        "a..b.jp",
        "x" * 64 + ".jp",
        "example.123",
        "xn--abc.jp",  # not valid punycode
        ".",
        "good.example, bad_one.example",
    ],
)
def test_parse_rejects_garbage(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        BrokerDomains.parse(value)
    assert caught.value.variable == "EXPOSURE_BROKER_DOMAINS"
    assert str(caught.value).startswith("EXPOSURE_BROKER_DOMAINS: ")


def test_direct_construction_must_be_canonical() -> None:
    assert BrokerDomains(frozenset({"mirai-sec.co.jp"})).matches("www.mirai-sec.co.jp")
    with pytest.raises(ConfigurationError):
        BrokerDomains(frozenset({"Mirai-Sec.co.jp"}))


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("mirai-sec.co.jp", True),
        ("trade.mirai-sec.co.jp", True),
        ("a.b.c.mirai-sec.co.jp", True),
        ("MIRAI-SEC.CO.JP", True),
        ("Trade.Mirai-Sec.Co.Jp", True),
        ("mirai-sec.co.jp.", True),
        ("trade.mirai-sec.co.jp.", True),
        ("trade.example", True),
        ("xn--n8j6f4a368ztszd.jp", True),
        ("www.xn--n8j6f4a368ztszd.jp", True),
        ("www.みらい証券.jp", True),  # Unicode host converted like the configuration
        ("mirai-sec.co.jp.evil.example", False),  # prefix trick
        ("evilmirai-sec.co.jp", False),  # suffix trick
        ("evil-mirai-sec.co.jp", False),
        ("mirai-sec.co.jp-evil.example", False),
        ("x@mirai-sec.co.jp", False),  # not a label boundary
        ("co.jp", False),  # a parent of a broker domain is not a broker site
        ("jp", False),
        ("mirai-sec.co", False),
        ("mirai-sec.co.jpx", False),
        ("other.example", False),
        ("", False),
        (None, False),
        ("\u0000", False),
        ("ex ample.jp", False),
    ],
)
def test_matches(site: str | None, expected: bool) -> None:
    assert BROKER.matches(site) is expected


def test_empty_broker_domains_match_nothing() -> None:
    empty = BrokerDomains.parse("")
    assert not empty.matches("mirai-sec.co.jp")
    assert not empty.matches(None)


def test_matches_with_many_domains() -> None:
    many = BrokerDomains.parse(",".join(f"broker{i}.example" for i in range(5000)))
    assert many.matches("www.broker4999.example")
    assert not many.matches("www.broker5000.example")
    assert not many.matches("broker1.example.attacker.example")
