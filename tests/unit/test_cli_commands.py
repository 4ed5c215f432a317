"""The command group loads a command's module only when that command runs, and knows where
every command lives."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from exposure.cli import app


def test_every_command_is_where_the_group_looks_for_it() -> None:
    for module in set(app.COMMAND_MODULES.values()):
        importlib.import_module(f"exposure.cli.{module}")
    assert set(app.main.commands) == set(app.COMMAND_MODULES)
    for name, module in app.COMMAND_MODULES.items():
        callback = app.main.commands[name].callback
        assert callback is not None
        assert callback.__module__ == f"exposure.cli.{module}", name


def test_ingest_starts_before_the_database_layer_loads() -> None:
    """`exposure ingest` keys its inputs while SQLAlchemy, NumPy and the pipeline load."""
    code = (
        "import sys, click\n"
        "from exposure.cli import main\n"
        "assert main.get_command(click.Context(main), 'ingest') is not None\n"
        "modules = ('sqlalchemy', 'numpy', 'exposure.ingest.pipeline')\n"
        "print(sorted(m for m in modules if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_help_lists_every_command() -> None:
    listed = app.main.list_commands(click.Context(app.main))
    assert listed == sorted(app.COMMAND_MODULES)
