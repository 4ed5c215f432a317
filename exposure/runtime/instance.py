"""Which daemon this is on its host: a lease owner id that a restarted daemon inherits.

Leases (docs/decisions/leases.md) name their holder. A holder that dies leaves its chunks and
outbox events leased until the lease runs out; when the daemon restarts on the same host (a
container restart, a crash loop, ``systemctl restart``) it should take them back at once.

So the owner id is ``<host>:daemon<N>``, where ``N`` is the lowest free *slot*: the slot is
an exclusive ``flock`` on a file in a per-user folder of the temporary directory, which the
kernel releases the instant its process dies. Two live daemons on one host never share a
slot; a restarted daemon takes the lowest free one, which is its dead predecessor's whenever
only that one died (if several died, each successor takes over one of them: all dead).
Where no lock can be taken (no writable temporary directory) the id is random, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from exposure.store.leases import OWNER_ID_CHARS, new_owner_id

log = logging.getLogger("exposure.runtime.daemon")

MAX_SLOTS = 64


def slot_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"exposure-daemons-{os.getuid()}"


@contextlib.contextmanager
def daemon_owner_id(folder: Path | None = None) -> Iterator[str]:
    """The owner id of this daemon for as long as the block runs (its slot stays locked)."""
    folder = folder or slot_folder()
    host = socket.gethostname()[:40]
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as error:
        log.debug("no daemon slot folder (%s): a random lease owner id", type(error).__name__)
        yield new_owner_id()
        return
    for slot in range(MAX_SLOTS):
        try:
            fd = os.open(folder / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            yield f"{host}:daemon{slot}"[:OWNER_ID_CHARS]
        finally:
            os.close(fd)  # releases the lock
        return
    yield new_owner_id()
