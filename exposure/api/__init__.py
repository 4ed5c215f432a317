"""The HTTP API: enrolment, exposures, resolutions, ``/range``, health and metrics."""

from __future__ import annotations

from exposure.api.app import add_routes, create_app
from exposure.api.keys import ENGINE, SETTINGS

__all__ = ["ENGINE", "SETTINGS", "add_routes", "create_app"]
