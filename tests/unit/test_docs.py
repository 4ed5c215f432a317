"""Every setting the code reads is documented: in .env.example and in the README."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

from connectors.registry import load_registry
from exposure.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
# Names that match the pattern but are not settings.
NOT_SETTINGS = {"EXPOSURE_FIELDS", "EXPOSURE_ID"}


def _variables_in_code() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.glob("exposure/**/*.py"), *ROOT.glob("connectors/**/*.py")]:
        names |= set(re.findall(r"EXPOSURE_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")))
    for cls in load_registry():
        names |= {variable.name for variable in cls.variables()}
    return names - NOT_SETTINGS


def test_every_variable_is_in_env_example() -> None:
    documented = set(
        re.findall(r"EXPOSURE_[A-Z0-9_]*[A-Z0-9]", (ROOT / ".env.example").read_text())
    )
    missing = _variables_in_code() - documented
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_variable_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in _variables_in_code() if name not in readme}
    assert not missing, f"document in README.md: {sorted(missing)}"


def test_env_example_values_load(tmp_path: Path) -> None:
    example = (ROOT / ".env.example").read_text()
    example = example.replace("EXPOSURE_PEPPER=\n", f"EXPOSURE_PEPPER={'ab' * 32}\n")
    env_file = tmp_path / ".env"
    env_file.write_text(example)
    settings = load_settings({}, env_file=env_file)
    assert settings.broker_domains.matches("trade.mirai-sec.co.jp")
    assert settings.report_schedule == "0 8 * * mon"
    registry = load_registry()
    for cls in registry:
        assert cls.schedule(settings.environ).text  # every schedule in the example parses
    # Connectors whose required values (a feed URL, an API key) are left empty there.
    for name in ("folder", "pwned_passwords"):
        registry.get(name).settings_type.from_environ(settings.environ)


def test_documented_defaults_are_the_code_defaults() -> None:
    """The README's configuration table and .env.example say what Settings really defaults to."""
    from exposure.settings import Settings

    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    checked = 0
    for variable in Settings.variables():
        if not variable.default:
            continue  # required, or empty by default: the docs say "(none)"
        row = re.search(rf"^\| `{variable.name}` \| ([^|]+) \|", readme, re.MULTILINE)
        assert row is not None, f"README.md has no table row for {variable.name}"
        assert row.group(1).strip() == f"`{variable.default}`", variable.name
        line = re.search(rf"^#? ?{variable.name}=(.*)$", example, re.MULTILINE)
        assert line is not None, f".env.example does not list {variable.name}"
        assert line.group(1) == variable.default, variable.name
        checked += 1
    assert checked >= 15


# -- documents the code cites ---------------------------------------------------------------

# `docs/architecture.md, "Policy"`: a file, and optionally a section (a heading in it).
CITATION = re.compile(r"(?<![\w/.-])([\w./-]+\.md)\b(?:,?\s*\"([^\"]+)\")?")
# The design notes the first build was written from, which are not in the repository.
OUTSIDE_DOCUMENTS = re.compile(r"\b(?:DESIGN|STYLE|FORMATS)\.md\b|\b(?:DESIGN|STYLE)\b")


def _sources() -> list[Path]:
    folders = ("exposure", "connectors", "migrations", "tests", "bench")
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _prose(path: Path) -> list[str]:
    """The module's docstrings and comments: where a citation is written."""
    source = path.read_text("utf-8")
    texts = [
        docstring
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and (docstring := ast.get_docstring(node, clean=False))
    ]
    texts += [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    return texts


def _headings(document: Path) -> set[str]:
    return {
        line.lstrip("#").strip()
        for line in document.read_text("utf-8").splitlines()
        if line.startswith("#")
    }


def _citations() -> list[tuple[Path, str, str | None]]:
    return [
        (path, cited, section)
        for path in _sources()
        for text in _prose(path)
        for cited, section in CITATION.findall(" ".join(text.split()))
    ]


def test_every_document_a_docstring_cites_exists() -> None:
    citations = _citations()
    assert any(cited == "docs/architecture.md" for _, cited, _ in citations)
    missing = sorted(
        f"{path.relative_to(ROOT)}: {cited}"
        for path, cited, _ in citations
        if not (ROOT / cited).is_file()
    )
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_exists() -> None:
    sections = [(path, cited, section) for path, cited, section in _citations() if section]
    assert sections  # the check below has something to check
    missing = sorted(
        f'{path.relative_to(ROOT)}: {cited}, "{section}"'
        for path, cited, section in sections
        if (ROOT / cited).is_file() and section not in _headings(ROOT / cited)
    )
    assert not missing, "cited sections that the document lacks:\n" + "\n".join(missing)


def test_no_docstring_cites_a_document_outside_the_repository() -> None:
    outside = sorted(
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in _sources()
        for text in _prose(path)
        for match in OUTSIDE_DOCUMENTS.finditer(text)
    )
    assert not outside, "cite the file under docs/ instead:\n" + "\n".join(outside)


def test_the_citation_checks_bite(tmp_path: Path) -> None:
    module = tmp_path / "cites.py"
    module.write_text('"""Rules (see DESIGN.md "Policy"; docs/nowhere.md, "X")."""\n# STYLE\n')
    [docstring, comment] = _prose(module)
    assert [m.group(0) for m in OUTSIDE_DOCUMENTS.finditer(docstring + comment)] == [
        "DESIGN.md",
        "STYLE",
    ]
    assert CITATION.findall(docstring) == [("DESIGN.md", "Policy"), ("docs/nowhere.md", "X")]
    assert "Policy" in _headings(ROOT / "docs" / "architecture.md")
    assert "Nowhere" not in _headings(ROOT / "docs" / "architecture.md")


def test_every_decision_record_is_indexed_and_every_link_resolves() -> None:
    decisions = ROOT / "docs" / "decisions"
    index = (decisions / "README.md").read_text("utf-8")
    records = {path.name for path in decisions.glob("*.md")} - {"README.md"}
    linked = set(re.findall(r"\]\(([\w-]+\.md)\)", index))
    assert records and records == linked, f"index vs files: {sorted(records ^ linked)}"
    for record in records:
        text = (decisions / record).read_text("utf-8")
        for part in ("**Context.**", "**Decision.**", "**Consequences.**"):
            assert part in text, f"{record} lacks {part}"
    for document in (ROOT / "docs").rglob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text("utf-8")):
            assert (document.parent / target).exists(), f"{document.name} links {target}"


# -- the README's layout ----------------------------------------------------------------------

# Packages whose every module the layout names (the others are described, not enumerated).
ENUMERATED = ("domain", "passwords", "customers", "ingest", "delivery", "report", "runtime")


def _layout() -> dict[str, str]:
    """The README's layout block, as the text of each entry (continuation lines joined)."""
    readme = (ROOT / "README.md").read_text("utf-8")
    block = readme.split("### Layout", 1)[1].split("```", 2)[1]
    entries: dict[str, str] = {}
    current = ""
    for line in block.splitlines():
        head = re.match(r"\s*([\w.]+/)\s", line)
        if head and not line.startswith(" " * 14):
            current = head.group(1)
            entries[current] = line[head.end() :]
        elif current:
            entries[current] += " " + line.strip()
    return entries


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w.]+", text))


def test_the_readme_layout_matches_the_tree() -> None:
    layout = _layout()
    packages = {
        f"{path.name}/"
        for path in (ROOT / "exposure").iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }
    listed_packages = {name for name in layout if name not in ("exposure/", "connectors/")}
    top_level = {"migrations/", "tests/", "docs/"}
    assert packages == listed_packages - top_level, "packages in exposure/ vs the layout"
    assert top_level <= set(layout)
    foundation = {p.stem for p in (ROOT / "exposure").glob("*.py")} - {"__init__", "__main__"}
    assert foundation <= _words(layout["exposure/"]), "top-level modules missing from the layout"
    connector_modules = {p.stem for p in (ROOT / "connectors").glob("*.py")} - {"__init__"}
    assert connector_modules <= _words(layout["connectors/"])
    for package in ENUMERATED:
        modules = {p.stem for p in (ROOT / "exposure" / package).glob("*.py")} - {"__init__"}
        missing = modules - _words(layout[f"{package}/"])
        assert not missing, f"exposure/{package}/ modules missing from the layout: {missing}"
