"""Ingestion and exposure listing commands."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from exposure.cli.app import emit, handle_errors, main, ready_engine, run
from exposure.cli.render import progress_bar, summarise_ingest
from exposure.dumps.formats import FORMATS
from exposure.ingest.input_keys import content_keys_in_background
from exposure.settings import Settings, load_settings

FORMAT_CHOICES = click.Choice(sorted(FORMATS))


@main.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--source", default="manual", show_default=True, help="Name recorded as the source.")
@click.option("--format", "format_override", type=FORMAT_CHOICES, help="Skip format detection.")
@handle_errors
def ingest(paths: tuple[Path, ...], source: str, format_override: str | None) -> None:
    """Ingest leaked dumps: files, folders or archives (format detected per file)."""
    total_bytes = sum(_input_size(path) for path in paths)
    settings = load_settings()
    # Keying an input is a pass over all its bytes, which needs none of the database or the
    # pipeline: it runs while their modules load (0.3 s of a 10M-line ingest hidden).
    keys = content_keys_in_background(settings.pepper.reveal(), paths)
    from exposure.ingest.pipeline import Ingestor
    from exposure.passwords.verifier import PasswordVerifier

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            results = []
            with progress_bar(total_bytes) as progress:
                async with PasswordVerifier() as verifier:
                    ingestor = Ingestor(  # loads the enrolled index while keying the first file
                        engine,
                        settings,
                        None,
                        verifier,
                        on_bytes=progress.on_bytes,
                        on_lines=progress.on_lines,
                    )
                    for path, key in zip(paths, keys, strict=True):
                        results.append(
                            await ingestor.ingest(
                                path,
                                source=source,
                                format_override=format_override,
                                key=asyncio.wrap_future(key),
                            )
                        )
        emit(summarise_ingest(results))

    run(go, settings)


@main.group("corpus")
def corpus_group() -> None:
    """The leaked-password corpus served by /range."""


@corpus_group.command("compact")
@handle_errors
def corpus_compact() -> None:
    """Fold the digests staged by ingests into the corpus now, and settle every folded one
    into the corpus table (the API does both in the background)."""
    from exposure.store import corpus, corpus_segments

    async def go(settings: Settings) -> None:
        async with ready_engine(settings) as engine:
            started = time.perf_counter()
            folded = await corpus.compact(engine, settle=False)
            fold_seconds = time.perf_counter() - started
            settled = await corpus.settle_all(engine)
            settle_seconds = time.perf_counter() - started - fold_seconds
            await corpus.sweep_spool(engine)
            async with engine.connect() as conn:
                left = await corpus.pending_digests(conn)
                unsettled = await corpus_segments.waiting_records(conn)
        emit(
            {
                "folded_digests": folded,
                "fold_seconds": round(fold_seconds, 3),
                "settled_digests": settled,
                "settle_seconds": round(settle_seconds, 3),
                "pending_digests": left,
                "unsettled_records": unsettled,
            }
        )

    run(go)


def _input_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
