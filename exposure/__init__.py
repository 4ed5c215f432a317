"""exposure: a self-hosted leaked-credential exposure monitor for online securities brokers."""

from __future__ import annotations

__version__ = "0.1.0"
