"""The package map is enforced: each package imports only the layers docs/architecture.md
allows, the core reaches connectors only through their protocol, and the pure layers stay pure.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What every layer may use: the root package's names (the JSON type, the user agent), errors,
# secrets and time.
FOUNDATION = {"exposure.errors", "exposure.secret", "exposure.clock"}

# Package -> what it may import besides itself and FOUNDATION (docs/architecture.md, "Layers").
ALLOWED: dict[str, set[str]] = {
    "exposure.dumps": set(),
    "exposure.domain": {"exposure.dumps.records"},
    "exposure.passwords": {"exposure.domain"},
    "exposure.store": {"exposure.domain", "exposure.customers.enrolment"},
    "exposure.customers": {"exposure.domain", "exposure.passwords", "exposure.store"},
    "exposure.delivery": {
        "exposure.domain",
        "exposure.store",
        "exposure.settings",
        "exposure.metrics",
    },
    "exposure.ingest": {
        "exposure.domain",
        "exposure.dumps",
        "exposure.passwords",
        "exposure.store",
        "exposure.delivery.payloads",
        "exposure.settings",
        "exposure.metrics",
        "connectors.base",
        "connectors.registry",
    },
    "exposure.report": {"exposure.store", "exposure.settings", "exposure.domain"},
    "connectors": {
        "exposure.domain",
        "exposure.dumps",
        "exposure.variables",
        "connectors",
    },
}


def _modules(package: str) -> Iterator[Path]:
    folder = ROOT.joinpath(*package.split("."))
    yield from sorted(folder.rglob("*.py"))


def _imports(path: Path) -> Iterator[str]:
    """Every absolute import of ours in the module, at any depth (TYPE_CHECKING included)."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("exposure", "connectors")


def _root_name(name: str) -> bool:
    """``exposure`` itself, or a name its ``__init__`` defines (``from exposure import X``)."""
    root, _, attribute = name.partition(".")
    if root != "exposure" or "." in attribute:
        return False
    folder = ROOT / "exposure"
    return not attribute or not (
        (folder / attribute).is_dir() or (folder / f"{attribute}.py").exists()
    )


def _permitted(name: str, package: str) -> bool:
    if _root_name(name):
        return True
    allowed = FOUNDATION | ALLOWED[package] | {package}
    if any(name == a or name.startswith(a + ".") for a in allowed):
        return True
    # `from exposure.dumps import records` names the package first: fine if a part is allowed.
    return any(a.startswith(name + ".") for a in allowed)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_layer_imports_only_what_the_map_allows(package: str) -> None:
    wrong = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules(package)
        for name in _imports(path)
        if _ours(name) and not _permitted(name, package)
    )
    assert not wrong, "imports across the layers (see docs/architecture.md):\n" + "\n".join(wrong)


def test_no_concrete_connector_is_imported_outside_connectors() -> None:
    """The core talks to connectors through their protocol (connectors.base) and finds them
    through the registry; a concrete connector is a plug-in like any other."""
    allowed = {"connectors", "connectors.base", "connectors.registry"}
    wrong = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in _modules("exposure")
        for name in _imports(path)
        if name.split(".")[0] == "connectors"
        and name not in allowed
        and not any(name.startswith(a + ".") and name.count(".") == 2 for a in allowed)
    )
    assert not wrong, "\n".join(wrong)


def test_the_check_would_catch_a_wrong_import() -> None:
    """The checks above are not vacuous: a wrong import is reported."""
    assert not _permitted("exposure.ingest.matching", "exposure.dumps")
    assert not _permitted("exposure.store.db", "exposure.domain")
    assert not _permitted("exposure.delivery.sender", "exposure.ingest")
    assert _permitted("exposure.delivery.payloads", "exposure.ingest")
    assert _permitted("exposure.dumps.records", "exposure.domain")
    assert _permitted("exposure.dumps", "exposure.domain")  # `from exposure.dumps import x`
