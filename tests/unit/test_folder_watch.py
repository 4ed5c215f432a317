"""The drop folder's watcher: which entries arrived complete (renamed in from a staging name),
told from the inbox's real change events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors import folder as folder_module
from connectors import folder_entries, folder_watch
from connectors.folder import IGNORED_SUFFIXES, FolderConnector, FolderSettings, _snapshot
from connectors.folder_entries import Signature
from tests.waiting import eventually


def test_a_staging_name_is_the_name_it_becomes() -> None:
    assert folder_watch.stem(".dump.txt.part", IGNORED_SUFFIXES) == "dump.txt"
    assert folder_watch.stem("leak.zip.TMP", IGNORED_SUFFIXES) == "leak.zip"
    assert folder_watch.stem("~$tree", IGNORED_SUFFIXES) == "tree"
    assert folder_watch.stem(".a.tmp.part", IGNORED_SUFFIXES) == "a"


def test_renames_pair_by_name_then_only_when_unambiguous() -> None:
    staged = [".a.txt.part", ".upload-1.tmp"]
    # a.txt pairs by name; b.zip takes the one staged name left.
    assert folder_watch.renamed_in({"a.txt", "b.zip"}, staged, IGNORED_SUFFIXES) == [
        "a.txt",
        "b.zip",
    ]
    assert staged == []
    # Two new entries, one unrelated staged name: either could have been written in place.
    staged = [".upload-2.tmp"]
    assert folder_watch.renamed_in({"c.txt", "d.txt"}, staged, IGNORED_SUFFIXES) == []
    assert staged == [".upload-2.tmp"]
    # Nothing staged went: nothing arrived by rename.
    assert folder_watch.renamed_in({"e.txt"}, [], IGNORED_SUFFIXES) == []


async def test_the_watch_yields_on_a_drop_and_records_only_renamed_entries(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    stop = asyncio.Event()
    settings = FolderSettings.from_environ({"EXPOSURE_FOLDER_PATH": str(inbox)})
    changes = FolderConnector.watch(settings, stop)
    assert changes is not None
    seen = 0

    async def follow() -> None:
        nonlocal seen
        async for _ in changes:
            seen += 1

    following = asyncio.create_task(follow())
    await asyncio.sleep(0.3)  # the watch is set up
    staged = inbox / ".renamed.txt.part"
    staged.write_text("a@example.jp:pw\n")
    staged.rename(inbox / "renamed.txt")
    await eventually(lambda: seen >= 1, within=10, what="the rename")
    (inbox / "in-place.txt").write_text("b@example.jp:pw\n")  # written where it lies
    await eventually(lambda: seen >= 2, within=10, what="the new file")
    await asyncio.sleep(0.2)
    snapshot = _snapshot(inbox)
    arrivals = folder_watch.arrivals(inbox)
    assert arrivals.take(snapshot) == {inbox / "renamed.txt"}
    assert arrivals.take(snapshot) == set()  # taken once
    stop.set()
    await asyncio.wait_for(following, 10)


async def test_a_renamed_entry_that_changed_since_waits_for_the_settle_check(
    tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    entry = inbox / "grows.txt"
    entry.write_text("a@example.jp:pw\n")
    arrivals = folder_watch.arrivals(inbox)
    arrivals.record("grows.txt", (1, 1, 1))  # its signature at arrival: not as it is now
    assert arrivals.take(_snapshot(inbox)) == set()


async def test_an_arrival_wakes_a_run_waiting_for_others_to_settle(tmp_path: Path) -> None:
    arrivals = folder_watch.arrivals(tmp_path)
    mark = arrivals.mark()
    arrivals.take({})
    waiting = asyncio.create_task(arrivals.wait(600, since=mark))
    await asyncio.sleep(0)
    assert not waiting.done()  # nothing arrived since the look: it waits
    arrivals.record("new.txt", (1, 2, 3))
    await asyncio.wait_for(waiting, 5)  # woken, long before its 600 s


async def test_an_arrival_recorded_during_the_look_does_not_wait(tmp_path: Path) -> None:
    arrivals = folder_watch.arrivals(tmp_path)
    mark = arrivals.mark()
    arrivals.record("late.txt", (1, 2, 3))  # while the look ran: not in what it saw
    assert arrivals.take({}) == set()
    await asyncio.wait_for(arrivals.wait(600, since=mark), 5)  # returns: look again


async def test_a_run_settling_others_takes_an_entry_renamed_in_during_its_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race CI met: the run's look at the inbox (in a thread) misses an entry renamed in
    just after it listed the folder, while the watcher records that entry before the run
    checks its arrivals. The run must look again at once, not sleep through the settle time
    of the file that is still settling."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "in-place.txt").write_text("b@example.jp:pw\n")  # settles for 600 s
    staged = inbox / ".renamed.txt.part"
    staged.write_text("a@example.jp:pw\n")
    loop = asyncio.get_running_loop()
    arrivals = folder_watch.arrivals(inbox)
    looks = 0

    def racing_snapshot(folder: Path) -> dict[Path, Signature]:
        nonlocal looks
        looks += 1
        seen = _snapshot(folder)
        if looks == 2:  # the settle loop's first look: the rename lands right after it
            staged.rename(inbox / "renamed.txt")
            signature = folder_entries.signature(inbox / "renamed.txt")
            recorded = asyncio.run_coroutine_threadsafe(
                _call(arrivals.record, "renamed.txt", signature), loop
            )
            recorded.result(5)  # the watcher has recorded it before the look returns
        return seen

    monkeypatch.setattr(folder_module, "_snapshot", racing_snapshot)
    settings = FolderSettings.from_environ(
        {"EXPOSURE_FOLDER_PATH": str(inbox), "EXPOSURE_FOLDER_SETTLE_SECONDS": "600"}
    )
    connector = FolderConnector(settings, session=None, inputs=None)  # type: ignore[arg-type]
    pages = connector.pages(None)
    page = await asyncio.wait_for(anext(pages), 10)  # not after the 600 s settle wait
    assert list(page.files) == [inbox / "renamed.txt"]  # type: ignore[attr-defined]
    assert looks == 3
    await pages.aclose()


async def _call(function: Callable[..., None], *args: object) -> None:
    function(*args)
