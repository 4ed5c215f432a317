"""The HTTP API: enrolment, exposures, resolutions, ``/range``, health and metrics.

The application (every route module) is imported on first use of :func:`create_app` or
:func:`add_routes`, not with the package: commands that serve no HTTP start faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exposure.api.app import add_routes, create_app
    from exposure.api.keys import ENGINE, SETTINGS

__all__ = ["ENGINE", "SETTINGS", "add_routes", "create_app"]


def __getattr__(name: str) -> Any:
    if name in ("add_routes", "create_app"):
        from exposure.api import app

        return getattr(app, name)
    if name in ("ENGINE", "SETTINGS"):
        from exposure.api import keys

        return getattr(keys, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
