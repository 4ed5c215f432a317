"""Tweak rules: each family, the order, the budget, determinism, and what is never a tweak."""

from __future__ import annotations

import random

import pytest

from exposure.passwords.tweaks import FAMILIES, MAX_LEAKED_LENGTH, Tweak, ranked, tweaks

ALL = 10_000  # a budget no password reaches: every candidate


def _families(leaked: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for tweak in ranked(leaked, ALL):
        found.setdefault(tweak.family, []).append(tweak.password)
    return found


@pytest.mark.parametrize(
    ("family", "leaked", "expected"),
    [
        ("increment_number", "Sakura!2024", ["Sakura!2025"]),
        ("increment_number", "password1", ["password2"]),
        ("increment_number", "taro07", ["taro08"]),  # leading zero kept
        ("increment_number", "kenji99!", ["kenji100!"]),  # the carry lengthens it
        ("decrement_number", "Sakura!2025", ["Sakura!2024"]),
        ("decrement_number", "password1", ["password0"]),
        ("year_step", "hanako1990", ["hanako1992", "hanako1993", "hanako1988"]),
        ("first_letter_case", "taro1234", ["Taro1234"]),
        ("first_letter_case", "Taro1234", ["taro1234"]),
        ("first_letter_case", "2024sakura", ["2024Sakura"]),  # the first letter, not char
        ("whole_case", "Yamada", ["yamada", "YAMADA", "yAMADA"]),
        ("append_digit", "sakura", ["sakura1", "sakura2", "sakura0"]),
        ("append_symbol", "kenji88", ["kenji88!", "kenji88#", "kenji88."]),
        ("append_suffix", "momiji", ["momiji123", "momiji12", "momiji!!"]),
        ("delete_last", "kenji88!", ["kenji88"]),
        ("delete_last", "password1", ["password"]),
        ("delete_tail", "tokyo!!", ["tokyo"]),
        ("delete_tail", "kenji88", ["kenji"]),
        ("leet", "password", ["p@ssword", "passw0rd", "pa$$word"]),
        ("leet", "p@ssw0rd", ["passw0rd", "p@ssword"]),  # substitutions undone
        ("swap_symbol", "Sakura2024!", ["Sakura2024#", "Sakura2024."]),
        ("symbol_before_number", "sakura2024", ["sakura!2024", "sakura@2024", "sakura_2024"]),
        ("symbol_before_number", "Sakura!2024", ["Sakura2024"]),
        ("move_symbols", "Sakura2024!", ["Sakura!2024", "2024!Sakura"]),
        ("move_symbols", "Sakura!2024", ["Sakura2024!"]),
        ("repeat_last", "kenji88", ["kenji888"]),
        ("prepend", "hanako", ["1hanako", "!hanako"]),
        ("reverse", "abc123", ["321cba"]),
        ("combined", "taro2024", ["Taro2025", "Taro2024!"]),
    ],
)
def test_each_rule_family(family: str, leaked: str, expected: list[str]) -> None:
    found = _families(leaked).get(family, [])
    # De-duplication keeps a candidate under the first (likelier) family that made it.
    everything = tweaks(leaked, ALL)
    for candidate in expected:
        assert candidate in everything, (family, candidate)
    assert found, family
    assert set(found) <= set(everything)


@pytest.mark.parametrize(
    ("leaked", "nothing_from"),
    [
        ("sakura", {"increment_number", "decrement_number", "year_step", "delete_last"}),
        ("さくら2024", {"first_letter_case"}),  # kana have no case
        ("Sakura!2024", {"delete_last"}),  # nobody drops a year's last digit
        ("hanako12", {"year_step", "swap_symbol"}),
    ],
)
def test_families_that_do_not_apply_make_nothing(leaked: str, nothing_from: set[str]) -> None:
    assert not nothing_from & set(_families(leaked))


@pytest.mark.parametrize(
    ("leaked", "current", "within"),
    [
        # The contract's examples, caught within the first few guesses.
        ("Sakura!2024", "Sakura!2025", 1),
        ("taro1234", "Taro1234", 2),
        ("password1", "password2", 1),
        ("kenji88", "kenji88!", 5),
    ],
)
def test_the_most_common_changes_come_first(leaked: str, current: str, within: int) -> None:
    assert current in tweaks(leaked, within)


def test_order_follows_family_share_then_choice_share() -> None:
    order = [t.family for t in ranked("hanako", ALL)]
    # The single most likely choice of each family appears in family order...
    firsts = [name for name in dict.fromkeys(order) if name != "combined"]
    shares = {f.name: f.share for f in FAMILIES}
    assert [shares[name] for name in firsts[:3]] == sorted(
        (shares[name] for name in firsts[:3]), reverse=True
    )
    # ...and within a family, the commoner character first.
    digits = [p[-1] for p in tweaks("hanako", ALL) if p[:-1] == "hanako" and p[-1].isdigit()]
    assert digits[:3] == ["1", "2", "0"]
    symbols = [p[-1] for p in tweaks("hanako", ALL) if p[:-1] == "hanako" and not p[-1].isalnum()]
    assert symbols[0] == "!"


@pytest.mark.parametrize("budget", [0, 1, 5, 10, 20, 50])
def test_budget_is_a_prefix_of_the_full_order(budget: int) -> None:
    full = tweaks("Sakura!2024", ALL)
    assert tweaks("Sakura!2024", budget) == full[:budget]
    assert len(tweaks("Sakura!2024", budget)) == min(budget, len(full))


def test_zero_or_negative_budget_turns_tweaks_off() -> None:
    assert tweaks("Sakura!2024", 0) == [] and tweaks("Sakura!2024", -3) == []


def test_deterministic_deduplicated_and_never_the_leaked_password() -> None:
    rnd = random.Random(17)
    alphabet = "abcXYZ019!@#. さ"
    for _ in range(500):
        leaked = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 14)))
        first = tweaks(leaked, ALL)
        assert first == tweaks(leaked, ALL)  # same input, same output, same order
        assert leaked not in first
        assert len(first) == len(set(first))
        assert "" not in first


def test_empty_and_overlong_leaked_values_have_no_tweaks() -> None:
    assert tweaks("", 50) == []
    assert tweaks("a" * (MAX_LEAKED_LENGTH + 1), 50) == []
    assert tweaks("a" * MAX_LEAKED_LENGTH, 5)


def test_a_tweak_never_shows_its_password() -> None:
    tweak = Tweak("increment_number", "Sakura!2025")
    assert "Sakura" not in repr(tweak) and "Sakura" not in str(tweak)
    assert all("Sakura" not in repr(t) for t in ranked("Sakura!2024", 20))
