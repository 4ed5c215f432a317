"""exposure: a self-hosted leaked-credential exposure monitor for online securities brokers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__version__ = "0.1.0"

# Sent with every request the monitor makes: webhooks and feeds alike (HIBP requires one).
USER_AGENT = f"exposure/{__version__} (self-hosted leaked-credential exposure monitor)"

# NumPy only sorts and searches here, never calls BLAS; OpenBLAS would still start a thread per
# core at import, which then spins beside the ingest's own workers. Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# JSON as the CLI and the API write it: what every ``as_json()`` returns. Only the edges (the
# command's summary, an API response, a webhook body) build it; between modules, values are
# typed dataclasses.
JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
JsonObject: TypeAlias = "dict[str, JsonValue]"
JsonMapping: TypeAlias = "Mapping[str, JsonValue]"  # a parameter that takes any JSON object
