"""The most likely small changes of a leaked password, most likely first ("tweaks").

A customer told that a password leaked (or made to change it) often changes it a little:
``Sakura!2024`` becomes ``Sakura!2025``, ``taro1234`` becomes ``Taro1234``. Attackers guess the
same way (credential tweaking), so a stale leaked password whose tweak verifies against the
enrolled hash is as dangerous as a live one (status ``tweaked``).

Each candidate gets a score: the share of tweaked passwords its rule family accounts for
(:data:`FAMILIES`, ranked as the published studies rank them; ``docs/tweaks.md`` gives the
sources and the reasoning) times the share of that family its particular choice takes (``1``
is the digit most often appended, ``!`` the symbol). Candidates are sorted by score, ties by
family order then choice order, de-duplicated, and cut at the budget. Pure and deterministic:
no randomness, no clock, no I/O.

Tweaks are secrets like the leaked password itself: they exist only in memory, and nothing here
logs, stores or raises with one in it (:class:`Tweak` hides it from ``repr``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

MAX_LEAKED_LENGTH = 64  # longer values are passphrases or junk: no tweak is a likely guess

# A password's tail as people edit it: <stem><number><symbols>, each part possibly empty.
_TAIL = re.compile(r"(?P<stem>.*?)(?P<number>[0-9]*)(?P<symbols>[!-/:-@\[-`{-~]*)", re.DOTALL)
# A symbol between the word and the number: "Sakura!2024".
_SPLIT = re.compile(
    r"(?P<stem>.*?[^0-9!-/:-@\[-`{-~])(?P<symbol>[!-/:-@\[-`{-~])(?P<number>[0-9]+)", re.DOTALL
)

# Character choices within a family, most frequent first (with their share of the family).
_APPENDED_DIGITS = (
    ("1", 0.40), ("2", 0.12), ("0", 0.09), ("3", 0.08), ("7", 0.07),
    ("5", 0.06), ("9", 0.05), ("4", 0.045), ("6", 0.04), ("8", 0.04),
)  # fmt: skip
_APPENDED_SYMBOLS = (
    ("!", 0.45), ("#", 0.10), (".", 0.09), ("@", 0.09), ("?", 0.05),
    ("*", 0.05), ("$", 0.04), ("_", 0.04), ("-", 0.04), ("+", 0.03),
)  # fmt: skip
_SUFFIXES = (("123", 0.30), ("12", 0.15), ("!!", 0.15), ("1!", 0.12), ("01", 0.10), ("00", 0.08))
_LEET = (
    ("a", "@", 0.25), ("o", "0", 0.20), ("e", "3", 0.15), ("i", "1", 0.12), ("s", "$", 0.10),
    ("a", "4", 0.05), ("s", "5", 0.05), ("t", "7", 0.04), ("l", "1", 0.04),
)  # fmt: skip
_UNLEET = (("@", "a", 0.25), ("0", "o", 0.20), ("3", "e", 0.15), ("$", "s", 0.10))


@dataclass(frozen=True, slots=True)
class Tweak:
    """One candidate: the rule family that made it and the candidate password (never shown)."""

    family: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Tail:
    stem: str
    number: str
    symbols: str


Choices = list[tuple[str, float]]  # (candidate, share of the family)
Rule = Callable[[str, _Tail], Choices]


def _shift_number(number: str, step: int) -> str | None:
    if not number:
        return None
    value = int(number) + step
    if value < 0:
        return None
    # Keep leading zeros ("07" -> "08"); a carry may lengthen it ("99" -> "100").
    return str(value).zfill(len(number))


def _increment(leaked: str, tail: _Tail) -> Choices:
    shifted = _shift_number(tail.number, 1)
    return [(tail.stem + shifted + tail.symbols, 1.0)] if shifted else []


def _decrement(leaked: str, tail: _Tail) -> Choices:
    shifted = _shift_number(tail.number, -1)
    return [(tail.stem + shifted + tail.symbols, 1.0)] if shifted else []


def _year_step(leaked: str, tail: _Tail) -> Choices:
    if not _is_year(tail.number):
        return []
    steps = ((2, 0.5), (3, 0.3), (-2, 0.2))
    return [
        (tail.stem + str(int(tail.number) + step) + tail.symbols, share) for step, share in steps
    ]


def _first_letter_case(leaked: str, tail: _Tail) -> Choices:
    for index, char in enumerate(leaked):
        if char.isalpha():
            swapped = char.swapcase()
            if swapped == char or len(swapped) != 1:
                return []  # no case (kana, kanji), or a case change that is not one letter
            return [(leaked[:index] + swapped + leaked[index + 1 :], 1.0)]
    return []


def _whole_case(leaked: str, tail: _Tail) -> Choices:
    return [
        (leaked.lower(), 0.35),
        (leaked[:1].upper() + leaked[1:].lower(), 0.35),
        (leaked.upper(), 0.20),
        (leaked.swapcase(), 0.10),
    ]


def _append_digit(leaked: str, tail: _Tail) -> Choices:
    return [(leaked + digit, share) for digit, share in _APPENDED_DIGITS]


def _append_symbol(leaked: str, tail: _Tail) -> Choices:
    return [(leaked + symbol, share) for symbol, share in _APPENDED_SYMBOLS]


def _append_suffix(leaked: str, tail: _Tail) -> Choices:
    return [(leaked + suffix, share) for suffix, share in _SUFFIXES]


def _is_year(number: str) -> bool:
    return len(number) == 4 and 1950 <= int(number) <= 2099


def _delete_last(leaked: str, tail: _Tail) -> Choices:
    """The last symbol or digit goes; not a year's last digit, which nobody drops."""
    if len(leaked) < 2 or leaked[-1].isalpha() or (not tail.symbols and _is_year(tail.number)):
        return []
    return [(leaked[:-1], 1.0)]


def _delete_tail(leaked: str, tail: _Tail) -> Choices:
    """The whole trailing symbol run, or the whole trailing number, goes."""
    choices: Choices = []
    if tail.symbols and len(tail.symbols) < len(leaked):
        choices.append((leaked[: -len(tail.symbols)], 0.6))
    if tail.number and not tail.symbols and tail.stem:
        choices.append((tail.stem, 0.4))
    return choices


def _repeat_last(leaked: str, tail: _Tail) -> Choices:
    return [(leaked + leaked[-1], 1.0)] if not leaked[-1].isalpha() else []


def _swap_symbol(leaked: str, tail: _Tail) -> Choices:
    if not tail.symbols:
        return []
    head, last = leaked[:-1], leaked[-1]
    return [(head + symbol, share) for symbol, share in _APPENDED_SYMBOLS if symbol != last]


def _symbol_before_number(leaked: str, tail: _Tail) -> Choices:
    """Insert a symbol between the word and the number, or take the one there out."""
    split = _SPLIT.fullmatch(leaked)
    if split:
        return [(split["stem"] + split["number"], 1.0)]
    if not tail.number or not tail.stem or tail.symbols:
        return []
    return [
        (tail.stem + symbol + tail.number, share)
        for symbol, share in (("!", 0.3), ("@", 0.2), ("_", 0.15), ("#", 0.15), (".", 0.1))
    ]


def _move_symbols(leaked: str, tail: _Tail) -> Choices:
    """Put trailing symbols before the number ("Sakura2024!" -> "Sakura!2024") or after it."""
    split = _SPLIT.fullmatch(leaked)
    if split:
        return [(split["stem"] + split["number"] + split["symbol"], 0.6)]
    choices: Choices = []
    if tail.number and tail.symbols:
        choices.append((tail.stem + tail.symbols + tail.number, 0.6))
    moved = tail.number + tail.symbols
    if moved and tail.stem:
        choices.append((moved + tail.stem, 0.4))  # the tail to the front
    return choices


def _leet(leaked: str, tail: _Tail) -> Choices:
    """One substitution at a time, over the word part (never the number)."""
    stem, rest = tail.stem, tail.number + tail.symbols
    choices: Choices = []
    for plain, leet, share in _LEET:
        if plain in stem.lower():
            choices.append((re.sub(plain, leet, stem, flags=re.IGNORECASE) + rest, share))
    for leet, plain, share in _UNLEET:
        if leet in stem:
            choices.append((stem.replace(leet, plain) + rest, share))
    return choices


def _prepend(leaked: str, tail: _Tail) -> Choices:
    return [("1" + leaked, 0.6), ("!" + leaked, 0.4)]


def _reverse(leaked: str, tail: _Tail) -> Choices:
    return [(leaked[::-1], 1.0)]


@dataclass(frozen=True, slots=True)
class Family:
    """A rule family and the share of tweaked passwords it is taken to account for."""

    name: str
    share: float
    rule: Rule


#: Rule families, most frequent first (see ``docs/tweaks.md`` for the sources).
FAMILIES: tuple[Family, ...] = (
    Family("increment_number", 0.20, _increment),
    Family("first_letter_case", 0.12, _first_letter_case),
    Family("append_symbol", 0.12, _append_symbol),
    Family("append_digit", 0.12, _append_digit),
    Family("delete_last", 0.07, _delete_last),
    Family("whole_case", 0.05, _whole_case),
    Family("decrement_number", 0.04, _decrement),
    Family("append_suffix", 0.04, _append_suffix),
    Family("leet", 0.04, _leet),
    Family("year_step", 0.03, _year_step),
    Family("swap_symbol", 0.03, _swap_symbol),
    Family("symbol_before_number", 0.03, _symbol_before_number),
    Family("move_symbols", 0.03, _move_symbols),
    Family("repeat_last", 0.02, _repeat_last),
    Family("delete_tail", 0.02, _delete_tail),
    Family("prepend", 0.02, _prepend),
    Family("reverse", 0.005, _reverse),
)

# Two changes at once (Pal et al.: many pairs are two edits apart): the most likely choice of
# one family applied after another's, scored as the product of both.
_COMBINED = (
    ("first_letter_case", "increment_number"),
    ("first_letter_case", "append_symbol"),
    ("first_letter_case", "append_digit"),
    ("increment_number", "append_symbol"),
    ("first_letter_case", "delete_last"),
)


def ranked(leaked: str, budget: int) -> list[Tweak]:
    """Up to ``budget`` distinct tweaks of ``leaked``, most likely first; never ``leaked``.

    Empty for an empty, over-long (over :data:`MAX_LEAKED_LENGTH`) leaked value or a budget
    of zero or less.
    """
    if budget <= 0 or not leaked or len(leaked) > MAX_LEAKED_LENGTH:
        return []
    scored = sorted(_scored(leaked), key=lambda item: (-item[0], item[1]))
    seen = {leaked}
    out: list[Tweak] = []
    for _, _, family, candidate in scored:
        if candidate in seen or not candidate:
            continue
        seen.add(candidate)
        out.append(Tweak(family, candidate))
        if len(out) == budget:
            break
    return out


def tweaks(leaked: str, budget: int) -> list[str]:
    """The candidate passwords of :func:`ranked`, in order."""
    return [tweak.password for tweak in ranked(leaked, budget)]


def _scored(leaked: str) -> Iterator[tuple[float, int, str, str]]:
    """(score, tie-break order, family, candidate) for every rule's candidates."""
    order = 0
    tail = _tail(leaked)
    best: dict[str, tuple[str, float]] = {}  # each family's most likely (candidate, score)
    for family in FAMILIES:
        for candidate, share in family.rule(leaked, tail):
            best.setdefault(family.name, (candidate, family.share * share))
            yield family.share * share, order, family.name, candidate
            order += 1
    by_name = {family.name: family for family in FAMILIES}
    for first_name, then_name in _COMBINED:
        if first_name not in best:
            continue
        changed, first_score = best[first_name]
        then = by_name[then_name]
        for candidate, share in then.rule(changed, _tail(changed))[:1]:
            yield first_score * then.share * share, order, "combined", candidate
            order += 1


def _tail(password: str) -> _Tail:
    match = _TAIL.fullmatch(password)  # every part may be empty: it matches any string
    if match is None:
        return _Tail(password, "", "")
    return _Tail(match["stem"], match["number"], match["symbols"])
