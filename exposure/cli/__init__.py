"""The ``exposure`` console script. Each module registers its commands on :data:`main`."""

from __future__ import annotations

from exposure.cli import api, connectors, customers, daemon, deliveries, ingest, report
from exposure.cli.app import main

# Importing a command module is what registers its commands.
COMMAND_MODULES = (api, connectors, customers, daemon, deliveries, ingest, report)

__all__ = ["main"]
