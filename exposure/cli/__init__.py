"""The ``exposure`` console script. Each module registers its commands on :data:`main`."""

from __future__ import annotations

from exposure.cli import customers, ingest  # noqa: F401  (registers commands)
from exposure.cli.app import main

__all__ = ["main"]
