"""The console's words in both languages, its CSRF tokens and its redirect guard (pure)."""

from __future__ import annotations

import itertools
import re

import pytest

from exposure.console import csrf
from exposure.console.guard import safe_next
from exposure.console.text import ConsoleLocale
from exposure.domain import policy
from exposure.domain.policy import Action, PasswordStatus, Recommendation, Severity
from exposure.report.figures import ATTEMPT_OUTCOMES, LEAK_TYPES, OUTBOX_STATES
from exposure.report.i18n import Locale
from exposure.store.audit import AuditAction, Channel

LABELS = {
    "action": [a.value for a in Action],
    "severity": [s.value for s in Severity],
    "password_status": [s.value for s in PasswordStatus],
    "leak_type": list(LEAK_TYPES),
    "outbox": list(OUTBOX_STATES),
    "attempt": list(ATTEMPT_OUTCOMES),
    "outcome": ["success", "failed", "skipped", "running"],
    "state": ["open", "reset_completed", "dismissed", "any"],
    "audit": [a.value for a in AuditAction],
    "channel": [c.value for c in Channel],
    "kind": ["email", "login_id", "phone"],
    "match": ["strict", "variant"],
    "recommendation": [r.value for r in Recommendation],
    "error_class": ["fatal", "retriable", "skippable"],
    "run": ["running", "completed"],
}


def test_both_languages_have_every_string() -> None:
    ja, en = ConsoleLocale("ja"), ConsoleLocale("en")
    assert ja.strings.keys() == en.strings.keys()
    assert Locale("ja").strings.keys() == Locale("en").strings.keys()
    assert all(value.strip() for value in ja.strings.values())


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_every_value_shown_has_a_label(lang: str) -> None:
    locale = ConsoleLocale(lang)
    for group, values in LABELS.items():
        for value in values:
            assert f"{group}.{value}" in locale.strings, (lang, group, value)
    # The label the report was missing.
    assert Locale(lang).label("attempt", "replayed") != "replayed"


def test_every_policy_reason_reads_in_japanese() -> None:
    ja = ConsoleLocale("ja")
    for status, site, stolen, capped, pin in itertools.product(
        PasswordStatus, *([(False, True)] * 4)
    ):
        english = policy._reason(status, site, stolen, capped, pin)
        japanese = ja.reason(english)
        assert not re.search(r"\b[a-z]{3,}\b", japanese), (english, japanese)
        assert ConsoleLocale("en").reason(english) == english


def test_csrf_tokens_are_bound_to_the_key_and_the_session() -> None:
    key, other_key = b"k" * 32, b"q" * 32
    token = csrf.token_for(key, "session-a")
    assert csrf.valid(key, "session-a", token)
    assert not csrf.valid(key, "session-b", token)
    assert not csrf.valid(other_key, "session-a", token)
    assert not csrf.valid(key, "session-a", token[:-1])
    assert not csrf.valid(key, None, token) and not csrf.valid(key, "session-a", None)
    assert not csrf.valid(key, "session-a", "")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/worklist?action=notify", "/worklist?action=notify"),
        ("/exposures/abc#x", "/exposures/abc#x"),
        ("//evil.example/", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
        ("javascript:alert(1)", "/dashboard"),
        ("/ok\r\nSet-Cookie: x=1", "/dashboard"),
        ("", "/dashboard"),
        (None, "/dashboard"),
        ("/" + "a" * 3000, "/dashboard"),
    ],
)
def test_only_same_site_paths_are_returned_to(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected
