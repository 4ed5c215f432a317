"""Values that stand in for a missing login or password (``UNKNOWN``, ``N/A``, ``NOT_SAVED``).

Stealers, exports and compilations write a word where a field was empty. Such a word is no
more a login than ``NOT_SAVED`` is a password: read as a login it would match every customer
whose login ID happens to be ``unknown`` (login IDs compare case-insensitively). A record whose
only login is a placeholder is rejected ``placeholder_login``; a placeholder password becomes
``password=None``.

Both sets are compared after ``strip()`` and ``lower()``.
"""

from __future__ import annotations

PLACEHOLDER_LOGINS = frozenset(
    (
        "",
        *"unknown null nil none undefined empty blank n/a n.a. - -- --- ? ??".split(),
        *"(null) <null> [null] (none) <none> [none] (empty) <empty> [empty] (unknown)".split(),
        *"[unknown] <unknown> not_saved [not_saved] notsaved no_login nologin".split(),
        "not saved",
    )
)
"""Login field values that mean "no login" (the C fast path mirrors the ones it can meet)."""

PLACEHOLDER_PASSWORDS = frozenset(
    (
        *"not_saved [not_saved] notsaved (null) <null> [null] (none) <none>".split(),
        *"(empty) <empty> [empty]".split(),
        "not saved",
    )
)
"""Password field values that mean "no password" in labelled (stealer) fields."""


def is_placeholder_login(value: str) -> bool:
    """True when a login field holds no login (see the module docstring)."""
    return value.strip().lower() in PLACEHOLDER_LOGINS
