"""The ``exposure`` console script. Each module registers its commands on :data:`main`, which
imports a command's module only when that command runs (:data:`app.COMMAND_MODULES`).

Command modules import what a command runs (the HTTP app, the daemon, the report renderer,
the connectors) inside the command, so that every command starts without loading the rest.
"""

from __future__ import annotations

from exposure.cli.app import main

__all__ = ["main"]
