"""Which connectors exist: every class registered under the entry-point group
``exposure.connectors``.

The built-in connectors are registered through the same mechanism as plug-ins (in our own
``pyproject.toml``), so a third-party connector is a package with one entry point::

    [project.entry-points."exposure.connectors"]
    acme_feed = "acme_exposure.feed:AcmeFeedConnector"

The entry point's name must equal the class's ``name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

from connectors.base import Connector
from exposure.errors import FatalError

ENTRY_POINT_GROUP = "exposure.connectors"

ConnectorClass = type[Connector[Any]]


class UnknownConnector(FatalError):
    """A connector name that no installed package registers."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown connector {name!r} (installed: {listed}); check EXPOSURE_CONNECTORS, or "
            f"install the package that registers it under the entry-point group "
            f"{ENTRY_POINT_GROUP} (in a checkout: pip install -e .)"
        )


class BadPlugin(FatalError):
    """An entry point that does not load to a proper connector class."""

    def __init__(self, entry: str, problem: str) -> None:
        self.entry = entry
        super().__init__(f"connector entry point {entry!r} {problem}; fix or uninstall it")


class Registry:
    """Connector classes by name."""

    def __init__(self, connectors: Iterable[ConnectorClass] = ()) -> None:
        self._by_name: dict[str, ConnectorClass] = {}
        for cls in connectors:
            self.register(cls)

    def register(self, cls: ConnectorClass) -> None:
        """Add ``cls``; a second class under the same name is an error, not a silent override."""
        existing = self._by_name.get(cls.name)
        if existing is not None and existing is not cls:
            raise BadPlugin(cls.name, f"clashes with {existing.__module__}.{existing.__name__}")
        self._by_name[cls.name] = cls

    def get(self, name: str) -> ConnectorClass:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownConnector(name, self._by_name) from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[ConnectorClass]:
        return iter(self._by_name[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def load_registry() -> Registry:
    """Every installed connector, built-ins included (loaded from their entry points)."""
    registry = Registry()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except (ImportError, AttributeError) as error:
            raise BadPlugin(entry.name, f"cannot be imported ({type(error).__name__})") from None
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise BadPlugin(entry.name, "is not a Connector subclass")
        if getattr(loaded, "name", None) != entry.name:
            raise BadPlugin(entry.name, "names a class whose `name` differs from the entry point")
        registry.register(loaded)
    return registry
