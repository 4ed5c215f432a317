"""Evaluation: how many tweaked current passwords the tweak rules catch, and at what budget.

Reports the share of (leaked, current) pairs whose current password is among the first
``budget`` tweaks of the leaked one (``exposure.passwords.tweaks``), at budgets 5, 10, 20 and 50,
on three sets:

* **generated**: ``--pairs`` pairs made with a seeded RNG (``--seed``) from Japanese-style and
  common base passwords (romaji words and names, English words, keyboard patterns; years,
  birthdays, short numbers; ``!`` ``#`` and other endings), each changed by a transformation
  drawn from the families the published studies describe, *with their own choices* (any digit,
  any symbol, any year shift) and including changes outside the rule list (a character inserted
  mid-word, a typo, a letter's case in the middle, two random digits appended, a first character
  dropped, a word doubled, two changes at once), so the rules are not graded on themselves;
* **held-out**: the hand-written pairs in ``bench/data/tweak_pairs.tsv`` (never used to choose
  or order the rules);
* **unrelated**: every held-out and generated old password against current passwords of other
  base words (a derangement): a catch there is a false positive, and there should be none.

Prints the table and exits 1 if any unrelated pair is caught.

    python bench/tweak_eval.py [--pairs 5000] [--seed 2025]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from exposure.passwords.tweaks import tweaks

BUDGETS = (5, 10, 20, 50)
DATA = Path(__file__).with_name("data") / "tweak_pairs.tsv"

WORDS = (
    "sakura momiji hanako taro kenji yuki haruka tokyo osaka kyoto fujisan ramen sushi nihon "
    "arigatou daisuki ganbare kabu toushi okane shiho akiko shota daiki ryota yusuke hiroshi "
    "kazuki megumi ayaka natsumi tanaka yamada suzuki satou watanabe kobayashi nakamura "
    "pikachu doraemon totoro naruto kumamon minato shibuya hakata sapporo okinawa yokohama "
    "monkey dragon shadow master soccer baseball tiger lovely happy sunshine princess "
    "password letmein welcome flower summer winter"
).split()
KEYBOARD = ("qwerty", "asdfgh", "1qaz2wsx", "zaq12wsx", "qazwsx", "zxcvbn", "abc", "asdf")
SYMBOLS = "!#@.?*$_-+&%"


def base_password(rnd: random.Random) -> tuple[str, str]:
    """A plausible password and the word it is built on."""
    word = rnd.choice(WORDS) if rnd.random() < 0.85 else rnd.choice(KEYBOARD)
    shown = word.capitalize() if rnd.random() < 0.35 else word
    number = rnd.choice(
        [
            "",
            str(rnd.randint(1970, 2025)),  # a year
            f"{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}",  # a birthday
            str(rnd.randint(0, 99)),
            str(rnd.randint(100, 9999)),
            "123",
            "1234",
        ]
    )
    symbol = rnd.choice(["", "", "", "!", "!", "#", "@", "."])
    if rnd.random() < 0.15 and number and symbol:
        return shown + symbol + number, word  # Sakura!2024
    return shown + number + symbol, word


def _last_number(password: str) -> re.Match[str] | None:
    return re.search(r"[0-9]+(?=[^0-9]*$)", password)


def _shift(password: str, delta: int) -> str:
    found = _last_number(password)
    if found is None:
        return password + str(max(delta, 1))
    value = max(0, int(found.group()) + delta)
    text = str(value).zfill(len(found.group()))
    return password[: found.start()] + text + password[found.end() :]


def _insert_middle(rnd: random.Random, password: str) -> str:
    at = rnd.randint(1, max(1, len(password) - 1))
    return password[:at] + rnd.choice("0123456789" + SYMBOLS + "xyz") + password[at:]


def _typo(rnd: random.Random, password: str) -> str:
    letters = [i for i, c in enumerate(password) if c.isalpha()]
    if not letters:
        return password + "x"
    at = rnd.choice(letters)
    return password[:at] + rnd.choice("abcdefghijklmnopqrstuvwxyz") + password[at + 1 :]


def _toggle_middle(rnd: random.Random, password: str) -> str:
    letters = [i for i, c in enumerate(password) if c.isalpha() and i > 0]
    if not letters:
        return password.swapcase()
    at = rnd.choice(letters)
    return password[:at] + password[at].swapcase() + password[at + 1 :]


def _leet(rnd: random.Random, password: str) -> str:
    plain, leet = rnd.choice([("a", "@"), ("o", "0"), ("e", "3"), ("i", "1"), ("s", "$")])
    return password.replace(plain, leet) if plain in password else password + "1"


def _move_symbol(rnd: random.Random, password: str) -> str:
    found = re.fullmatch(r"(.*?)([0-9]+)([^0-9A-Za-z]+)", password)
    if found:
        return found.group(1) + found.group(3) + found.group(2)
    return password + rnd.choice(SYMBOLS)


Transform = Callable[[random.Random, str, str], str]

# (weight, in the rule list?, transformation): the published families with their own random
# choices, then changes outside the rules. Weights are this script's, not the rules' shares.
TRANSFORMS: list[tuple[float, bool, Transform]] = [
    (0.15, True, lambda r, p, w: _shift(p, 1)),
    (0.10, True, lambda r, p, w: p[0].swapcase() + p[1:]),
    (0.09, True, lambda r, p, w: p + r.choice("0123456789")),
    (0.08, True, lambda r, p, w: p + r.choice(SYMBOLS)),
    (0.06, True, lambda r, p, w: p[:-1] if len(p) > 1 else p + "1"),
    (0.04, True, lambda r, p, w: r.choice([p.lower(), p.upper(), p.capitalize()])),
    (0.03, True, lambda r, p, w: _shift(p, -1)),
    (0.04, True, lambda r, p, w: _leet(r, p)),
    (0.04, True, lambda r, p, w: _shift(p, r.choice([-10, -5, -3, -2, 2, 3, 4, 5, 6, 10]))),
    (0.02, True, lambda r, p, w: _move_symbol(r, p)),
    (0.02, True, lambda r, p, w: "1" + p if r.random() < 0.5 else "!" + p),
    (0.05, False, lambda r, p, w: p + str(r.randint(10, 99))),
    (0.04, False, lambda r, p, w: _insert_middle(r, p)),
    (0.03, False, lambda r, p, w: _toggle_middle(r, p)),
    (0.03, False, lambda r, p, w: _typo(r, p)),
    (0.02, False, lambda r, p, w: p[1:] if len(p) > 2 else p + "!"),
    (0.02, False, lambda r, p, w: p + w),
    (0.02, False, lambda r, p, w: p + str(r.randint(2020, 2026))),
    (0.12, False, lambda r, p, w: _two_changes(r, p, w)),
]


def _two_changes(rnd: random.Random, password: str, word: str) -> str:
    first = _pick(rnd, in_rules_only=True)
    second = _pick(rnd, in_rules_only=True)
    return second(rnd, first(rnd, password, word), word)


def _pick(rnd: random.Random, *, in_rules_only: bool = False) -> Transform:
    pool = [(w, f) for w, inside, f in TRANSFORMS if inside or not in_rules_only]
    return rnd.choices([f for _, f in pool], weights=[w for w, _ in pool])[0]


def generated_pairs(count: int, seed: int) -> list[tuple[str, str, str, bool]]:
    """(old, new, base word, transformation in the rule list?) pairs, reproducibly."""
    rnd = random.Random(seed)
    weights = [w for w, _, _ in TRANSFORMS]
    pairs: list[tuple[str, str, str, bool]] = []
    while len(pairs) < count:
        old, word = base_password(rnd)
        index = rnd.choices(range(len(TRANSFORMS)), weights=weights)[0]
        _, inside, transform = TRANSFORMS[index]
        new = transform(rnd, old, word)
        if new != old:
            pairs.append((old, new, word, inside))
    return pairs


def held_out_pairs() -> list[tuple[str, str]]:
    rows = []
    for line in DATA.read_text("utf-8").splitlines():
        if line and not line.startswith("#"):
            old, new, _ = line.split("\t", 2)
            rows.append((old, new))
    return rows


def caught_at(pairs: list[tuple[str, str]]) -> dict[int, float]:
    """Share of pairs whose new password is within each budget's tweaks of the old one."""
    ranks = Counter[int]()
    for old, new in pairs:
        order = tweaks(old, max(BUDGETS))
        ranks[order.index(new) + 1 if new in order else 0] += 1
    return {
        budget: sum(n for rank, n in ranks.items() if 0 < rank <= budget) / len(pairs)
        for budget in BUDGETS
    }


def _stem(password: str) -> str:
    return re.sub(r"[^a-z]", "", password.lower())


def unrelated_pairs(pairs: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """Each old password against the new password of a pair on another base word."""
    rnd = random.Random(seed)
    news = [new for _, new in pairs]
    out = []
    for old, _ in pairs:
        for _ in range(20):
            other = rnd.choice(news)
            if _stem(other)[:4] != _stem(old)[:4]:
                out.append((old, other))
                break
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=5000, help="generated pairs (5000)")
    parser.add_argument("--seed", type=int, default=2025, help="RNG seed (2025)")
    args = parser.parse_args()

    generated = generated_pairs(args.pairs, args.seed)
    held_out = held_out_pairs()
    sets = {
        "generated, all": [(o, n) for o, n, _, _ in generated],
        "generated, families in the rules": [(o, n) for o, n, _, inside in generated if inside],
        "generated, changes outside the rules": [
            (o, n) for o, n, _, inside in generated if not inside
        ],
        "held-out hand-written": held_out,
    }
    print(f"{'set':38} {'pairs':>6}  " + "  ".join(f"@{b:<4}" for b in BUDGETS))
    for name, pairs in sets.items():
        shares = caught_at(pairs)
        print(f"{name:38} {len(pairs):6}  " + "  ".join(f"{shares[b]:5.1%}" for b in BUDGETS))
    unrelated = unrelated_pairs(sets["generated, all"], args.seed) + unrelated_pairs(
        held_out, args.seed
    )
    false_positive = caught_at(unrelated)
    print(
        f"{'unrelated (false positives)':38} {len(unrelated):6}  "
        + "  ".join(f"{false_positive[b]:5.1%}" for b in BUDGETS)
    )
    started = time.perf_counter()
    for old, _, _, _ in generated:
        tweaks(old, max(BUDGETS))
    rate = len(generated) / (time.perf_counter() - started)
    print(f"tweak lists of {max(BUDGETS)} made: {rate:,.0f} a second on one thread")
    if false_positive[max(BUDGETS)] > 0:
        print("FAIL: an unrelated pair was caught")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
