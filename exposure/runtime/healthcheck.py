"""The container's health check: ``python -m exposure.runtime.healthcheck``.

It asks ``/readyz`` on the address the API really listens on, read from
``EXPOSURE_API_LISTEN`` as the daemon reads it (the environment, then ``.env``), so changing
that setting never leaves a health check probing a port nobody listens on. A wildcard
listen address (``0.0.0.0``, ``::``) is probed on the loopback. Exit status 0 when ready,
1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from exposure.settings import parse_listen

DEFAULT_LISTEN = "127.0.0.1:8080"
TIMEOUT_SECONDS = 4.0
# A wildcard listen address is probed on the loopback (nothing here binds to it).
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1"}  # noqa: S104


def readiness_url(environ: Mapping[str, str]) -> str:
    """Where ``/readyz`` answers for the API configured in ``environ`` (and its ``.env``)."""
    env_file = Path(environ.get("EXPOSURE_ENV_FILE", ".env"))
    listen = environ.get("EXPOSURE_API_LISTEN") or dotenv_values(env_file).get(
        "EXPOSURE_API_LISTEN"
    )
    host, port = parse_listen(listen or DEFAULT_LISTEN)
    host = _LOOPBACK.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/readyz"


def main() -> int:
    url = readiness_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        print(f"unhealthy: {url}: {type(error).__name__}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
