"""API token scopes (apart from :mod:`exposure.api.auth`, so the CLI can name them cheaply)."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What a token may do."""

    ENROL = "enrol"  # POST /v1/customers, DELETE /v1/customers/{id}
    READ = "read"  # GET /v1/exposures[/{id}]; /range when EXPOSURE_RANGE_PUBLIC=false
    RESOLVE = "resolve"  # POST /v1/exposures/{id}/resolution
