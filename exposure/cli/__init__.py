"""The ``exposure`` console script. Each module registers its commands on :data:`main`.

Command modules import what a command runs (the HTTP app, the daemon, the report renderer,
the connectors) inside the command, so that every command starts without loading the rest.
"""

from __future__ import annotations

from exposure.cli import api, connectors, customers, daemon, deliveries, ingest, report
from exposure.cli.app import main

# Importing a command module is what registers its commands.
COMMAND_MODULES = (api, connectors, customers, daemon, deliveries, ingest, report)

__all__ = ["main"]
