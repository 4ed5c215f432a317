"""Every setting the code reads is documented: in .env.example and in the README."""

from __future__ import annotations

import re
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
