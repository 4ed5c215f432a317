"""Keyed identities of ingestion inputs: a dump file, a byte range of one, a connector page.

They let a crashed run resume and a re-ingest be recognised, and they are keyed with the
pepper because an unkeyed hash of a tiny dump would let anyone holding the database confirm a
guess of what it contained.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from exposure.dumps.records import LeakRecord


def content_key(pepper: bytes, path: Path) -> str:
    """A keyed digest of the input's bytes (a folder: of its files' names and contents), so
    the same dump is recognised under any name and a changed file is a new input.

    Keyed with the pepper, because an unkeyed hash of a tiny dump would let anyone holding
    the database confirm a guess of what it contained.
    """
    digest = hmac.new(pepper, b"dump\x00", "sha256")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode("utf-8", "surrogateescape") + b"\0")
        with file.open("rb") as handle:
            # Large reads: hashing releases the GIL, and taking it back between two reads can
            # wait out a 5 ms switch interval while another thread runs Python (imports).
            while chunk := handle.read(8 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def content_keys_in_background(pepper: bytes, paths: Sequence[Path]) -> list[Future[str]]:
    """Start computing each input's :func:`content_key`, in order, on a thread of its own.

    A daemon thread: an interrupted command must not wait for a pass over a large dump.
    """
    keys: list[Future[str]] = [Future() for _ in paths]

    def work() -> None:
        for path, key in zip(paths, keys, strict=True):
            if key.set_running_or_notify_cancel():
                try:
                    key.set_result(content_key(pepper, path))
                except Exception as error:  # the ingest of that input raises it
                    key.set_exception(error)

    threading.Thread(target=work, name="content-keys", daemon=True).start()
    return keys


def range_key(pepper: bytes, file_key: str, start: int, end: int) -> str:
    """The content key of bytes ``start``-``end`` of the file whose key is ``file_key``: a chunk
    killed mid-way resumes from its own checkpoint (and a re-ingested range feeds no corpus)."""
    message = f"range\x00{file_key}\x00{start}\x00{end}".encode()
    return hmac.new(pepper, message, "sha256").hexdigest()


def records_key(pepper: bytes, label: str, records: Sequence[LeakRecord]) -> str:
    """A keyed digest of a connector page, so a page fetched again after a crash resumes."""
    digest = hmac.new(pepper, b"page\x00" + label.encode() + b"\x00", "sha256")
    for record in records:
        for part in (record.login, record.password or "", record.site or "", record.leak_type):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\x1f")
        digest.update(b"\x1e")
    return digest.hexdigest()
