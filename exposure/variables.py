"""One grammar for every setting: the core's (:mod:`exposure.settings`) and each connector's.

A settings type is a frozen dataclass whose fields are declared with :func:`setting`: the
environment variable it reads, a line of help, a default (none: the variable is required) and
a parser. :meth:`EnvironSettings.from_environ` reads them all; a blank value counts as unset,
and a parser that raises ``ValueError`` becomes a :class:`~exposure.errors.ConfigurationError`
naming the variable (parsers never echo the value they reject). The same declarations list
the variables for ``exposure connectors list`` and for the tests that check every variable is
documented.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar, Self

from exposure.errors import ConfigurationError
from exposure.secret import Secret


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable a settings type reads."""

    name: str
    help: str
    default: str | None  # as shown to operators; None when required
    required: bool
    secret: bool
    parse: Callable[[str], Any] = field(repr=False, compare=False)


def setting(
    variable: str,
    *,
    help: str,
    default: Any = MISSING,
    parse: Callable[[str], Any] = str,
    secret: bool = False,
    shown: str | None = None,
) -> Any:
    """Declare a settings field read from ``variable``; ``parse`` raises ValueError when invalid.

    Without ``default`` the variable is required. ``shown``: the default as operators read it,
    when ``str(default)`` would not say it well.
    """
    meta = {
        "variable": Variable(
            variable,
            help,
            None if default is MISSING else (shown if shown is not None else _shown(default)),
            default is MISSING,
            secret,
            parse,
        )
    }
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


class EnvironSettings:
    """Base of a frozen dataclass of :func:`setting` fields (other fields are passed in)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], /, **given: Any) -> Self:
        """Read every :func:`setting` field from ``environ``; ``given`` fills the others.

        Raises :class:`ConfigurationError` naming the variable that is missing or invalid.
        """
        values: dict[str, object] = dict(given)
        for variable, name in cls._fields():
            raw = environ.get(variable.name, "").strip()
            if not raw:
                if variable.required:
                    raise ConfigurationError(variable.name, f"not set; {variable.help}")
                continue
            try:
                values[name] = variable.parse(raw)
            except ValueError as error:
                raise ConfigurationError(variable.name, str(error)) from None
        return cls(**values)

    @classmethod
    def variables(cls) -> list[Variable]:
        """Every variable this type reads, in declaration order."""
        return [variable for variable, _ in cls._fields()]

    @classmethod
    def _fields(cls) -> list[tuple[Variable, str]]:
        return [(f.metadata["variable"], f.name) for f in fields(cls) if "variable" in f.metadata]


# -- parsers: each raises ValueError with a message that never quotes the value -------------


def parse_positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value <= 0:
        raise ValueError("must be positive")
    return value


def parse_positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not value > 0:
        raise ValueError("must be positive")
    return value


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def parse_endpoint_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL, exactly as given (a webhook endpoint)."""
    if not text.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return text


def parse_http_url(text: str) -> str:
    """An ``http://`` or ``https://`` base URL without a trailing slash (paths are appended)."""
    return parse_endpoint_url(text).rstrip("/")


def parse_secret(text: str) -> Secret[str]:
    return Secret(text)


def parse_choice(*choices: str, fold_case: bool = True) -> Callable[[str], str]:
    """One of ``choices``; ``fold_case``: compared (and returned) lower-cased."""

    def parse(text: str) -> str:
        value = text.lower() if fold_case else text
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return parse


def parse_list(text: str) -> tuple[str, ...]:
    """Comma-separated items, trimmed; empty items dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())
