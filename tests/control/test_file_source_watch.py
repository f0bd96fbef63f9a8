"""When the file source looks (`FileSource.run` with `dir_watch`): at once after a change
anywhere in the tree, including directories made after it started or made anew; seldom when
nothing changes; every `poll_interval` without inotify, past the watch limit, or while a
listing fails."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from control.plane.model.state import MeshState
from control.plane.sources import dir_watch, file
from control.plane.sources.dir_watch import DirectoryWatch
from control.plane.sources.file import FileSource
from tests.control.test_file_source import _names, _service
from tests.control.waiting import eventually

pytestmark = pytest.mark.anyio


class _Counted(FileSource):
    """A source that counts its looks."""

    looks = 0

    def refresh(self) -> bool:
        self.looks += 1
        return super().refresh()


@asynccontextmanager
async def _running(source: FileSource) -> AsyncIterator[asyncio.Queue[MeshState]]:
    seen: asyncio.Queue[MeshState] = asyncio.Queue()
    source.load()
    task = asyncio.create_task(source.run(seen.put_nowait))
    await asyncio.sleep(0.2)  # watching, and the first look after the watches began done
    try:
        yield seen
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _seen_within(seen: asyncio.Queue[MeshState], names: list[str], seconds: float) -> float:
    """Seconds until a state with these services arrives (fails after `seconds`)."""
    started = time.monotonic()
    while True:
        left = seconds - (time.monotonic() - started)
        state = await asyncio.wait_for(seen.get(), max(left, 0.001))
        if _names(state) == names:
            return time.monotonic() - started


def _source(directory: Path) -> _Counted:
    return _Counted(directory, poll_interval=0.05, rescan_interval=30)


async def test_a_quiet_tree_is_not_looked_at_and_a_change_is_seen_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    source = _source(tmp_path)
    async with _running(source) as seen:
        looks = source.looks
        await asyncio.sleep(1.0)
        assert source.looks == looks  # polling every 50 ms would have looked ~20 times
        (tmp_path / "a.yaml").write_text(_service("b"))  # in place, not a rename
        assert await _seen_within(seen, ["b"], 2) < 0.9  # no rescan before 30 s: the event


async def test_a_directory_made_after_the_start_is_watched(tmp_path: Path) -> None:
    source = _source(tmp_path)
    async with _running(source) as seen:
        nested = tmp_path / "team" / "payments"
        nested.mkdir(parents=True)
        (nested / "a.yaml").write_text(_service("a"))
        await _seen_within(seen, ["a"], 2)
        await asyncio.sleep(0.2)
        (nested / "a.yaml").write_text(_service("b"))  # needs the new directory's own watch
        assert await _seen_within(seen, ["b"], 2) < 0.9


async def test_a_write_between_a_listing_and_the_new_watch_is_seen(tmp_path: Path) -> None:
    """A directory is watched only after the listing that found it: what is written into it
    in between sends no event, so the source looks again at once."""
    nested = tmp_path / "team"

    class Racing(_Counted):
        def refresh(self) -> bool:
            changed = super().refresh()
            late = nested / "b.yaml"
            if nested.exists() and not late.exists():
                late.write_text(_service("b"))  # after this listing, before the watch
            return changed

    source = Racing(tmp_path, poll_interval=0.05, rescan_interval=30)
    async with _running(source) as seen:
        nested.mkdir()
        await _seen_within(seen, ["b"], 2)  # not at the 30 s rescan


async def test_a_directory_made_anew_under_its_old_name_is_watched_again(tmp_path: Path) -> None:
    team = tmp_path / "team"
    team.mkdir()
    (team / "a.yaml").write_text(_service("a"))
    source = _source(tmp_path)
    async with _running(source) as seen:
        (team / "a.yaml").unlink()
        team.rmdir()  # its watch is gone with it; no look sees it missing
        team.mkdir()
        (team / "b.yaml").write_text(_service("b"))
        await _seen_within(seen, ["b"], 2)
        await asyncio.sleep(0.2)
        (team / "b.yaml").write_text(_service("c"))
        assert await _seen_within(seen, ["c"], 2) < 0.9


async def test_the_rescan_sees_what_inotify_cannot(tmp_path: Path) -> None:
    """A link's target edited outside the tree sends no event into it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "real.yaml").write_text(_service("a"))
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "mesh.yaml").symlink_to(outside / "real.yaml")
    source = _Counted(tree, poll_interval=0.05, rescan_interval=0.5)
    async with _running(source) as seen:
        (outside / "real.yaml").write_text(_service("edited"))
        await _seen_within(seen, ["edited"], 3)  # at the 0.5 s rescan: no event comes


async def _polling(source: _Counted) -> None:
    """Returns once the source has looked 8 times more, with no change to tell it to."""
    looks = source.looks

    async def polled() -> bool:
        return source.looks - looks >= 8

    await eventually(polled, timeout=2, what="8 looks without an event")


async def test_without_inotify_it_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DirectoryWatch, "open", classmethod(lambda cls, root: None))
    (tmp_path / "a.yaml").write_text(_service("a"))
    source = _source(tmp_path)
    async with _running(source) as seen:
        await _polling(source)
        (tmp_path / "a.yaml").write_text(_service("b"))
        await _seen_within(seen, ["b"], 2)


async def test_past_the_watch_limit_it_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dir_watch, "MAX_DIRECTORIES", 2)
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
    source = _source(tmp_path)
    async with _running(source) as seen:
        await _polling(source)
        (tmp_path / "three" / "a.yaml").write_text(_service("a"))
        await _seen_within(seen, ["a"], 2)


async def test_a_failed_listing_is_retried_without_an_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    source = _source(tmp_path)
    real = file._list
    failing = True

    def listing(directory: Path, paths: dict[str, Path] | None = None) -> file._Listing:
        if failing:  # what a process out of descriptors gets
            return file._Listing({}, {directory: "cannot list: Too many open files"}, [])
        return real(directory, paths)

    async with _running(source) as seen:
        monkeypatch.setattr(file, "_list", listing)
        os.utime(tmp_path / "a.yaml")  # one event: a look, which fails
        await _polling(source)  # then a look every 50 ms, no event needed
        assert _names(source.current()) == ["a"]  # the last good state
        assert source.problems()
        failing = False

        async def listed_again() -> bool:
            return not source.problems()

        await eventually(listed_again, timeout=2, what="a listing that succeeds")
        while not seen.empty():  # whatever was pushed meanwhile still had the service
            assert _names(seen.get_nowait()) == ["a"]


async def test_a_source_run_unloaded_looks_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    source = _source(tmp_path)
    seen: asyncio.Queue[MeshState] = asyncio.Queue()
    task = asyncio.create_task(source.run(seen.put_nowait))
    try:
        assert await _seen_within(seen, ["a"], 2) < 0.9  # not at the 30 s rescan
    finally:
        task.cancel()
