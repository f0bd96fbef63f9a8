"""The `file` source reads only regular files, and only so much of them: a FIFO named like a
config file must not hang the watcher, `/dev/zero` behind a link must not be read, and an
oversized file or one with too many documents is refused whole, its last good objects kept."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.plane.model.state import MeshState
from control.plane.sources.file import FileLimits, FileSource
from tests.control.test_file_source_last_good import _rule, _service


def _names(state: MeshState) -> list[str]:
    return [name for _, name in state.services]


def _load_within(source: FileSource, seconds: float) -> MeshState:
    """`load()` in a thread, so that a hang fails the test instead of stopping the suite."""
    result: list[MeshState] = []
    thread = threading.Thread(target=lambda: result.append(source.load()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"the source did not finish reading within {seconds}s"
    return result[0]


@contextlib.contextmanager
def fifo(path: Path) -> Iterator[None]:
    os.mkfifo(path)
    try:
        yield
    finally:  # let a reader blocked on it (the bug this guards against) go
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_named_like_config_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    errors: list[str] = []
    with fifo(tmp_path / "x.yaml"):
        source = FileSource(tmp_path, count_error=errors.append)
        state = _load_within(source, 5)
        assert _names(state) == ["a"]
        [problem] = state.problems
        assert problem.origin.endswith("x.yaml")
        assert "not read: a FIFO; only regular files are read" in problem.message
        assert errors == ["not_regular"]
        # The watcher goes on: an edit elsewhere still applies.
        (tmp_path / "b.yaml").write_text(_service("b", 2))
        assert source.refresh() is True
        assert _names(source.current()) == ["a", "b"]


def test_a_device_behind_a_link_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    state = _load_within(FileSource(tmp_path), 5)
    assert _names(state) == ["a"]
    assert "not read: a device" in state.problems[0].message


def test_a_file_replaced_by_a_special_file_keeps_its_objects(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_service("a") + "---\n" + _rule("a"))
    source = FileSource(tmp_path)
    source.load()
    path.unlink()
    with fifo(path):
        thread = threading.Thread(target=source.refresh, daemon=True)
        thread.start()
        thread.join(5)
        assert not thread.is_alive()
        assert _names(source.current()) == ["a"]
        assert "kept the last good version of Service default/a, DestinationRule default/a" in (
            source.current().problems[0].message
        )


def test_an_oversized_file_is_refused_whole_and_its_objects_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_service("a"))
    errors: list[str] = []
    source = FileSource(tmp_path, limits=FileLimits(max_bytes=1000), count_error=errors.append)
    source.load()
    path.write_text(_service("a", port=81) + "#" * 1000)
    source.refresh()
    state = source.current()
    assert state.services[("default", "a")].ports[0].port == 80  # the last good version
    assert "over the limit of 1000 (--config-max-file-bytes)" in state.problems[0].message
    assert errors == ["too_large"]


@pytest.mark.parametrize(
    "text",
    [
        "---\n".join([_service("a")] + ["{}\n"] * 20),
        '{"apiVersion": "v1", "kind": "List", "items": [' + ", ".join(["{}"] * 20) + "]}",
    ],
    ids=["documents", "list-items"],
)
def test_too_many_documents_are_refused_whole(tmp_path: Path, text: str) -> None:
    name = "a.json" if text.startswith("{") else "a.yaml"
    path = tmp_path / name
    path.write_text(_service("a") if name == "a.yaml" else _json_service())
    errors: list[str] = []
    source = FileSource(tmp_path, limits=FileLimits(max_documents=10), count_error=errors.append)
    assert _names(source.load()) == ["a"]
    path.write_text(text)
    source.refresh()
    state = source.current()
    assert _names(state) == ["a"]
    assert "more than 10" in state.problems[0].message
    assert "--config-max-documents" in state.problems[0].message
    assert errors == ["too_many_documents"]


def _json_service() -> str:
    return (
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},'
        ' "spec": {"ports": [{"port": 80}]}}'
    )


def test_an_alias_bomb_is_refused_and_the_last_good_kept(tmp_path: Path) -> None:
    from tests.config.test_loader import ALIAS_BOMB

    path = tmp_path / "a.yaml"
    path.write_text(_service("a") + "---\n" + _service("b", 2))
    source = FileSource(tmp_path)
    source.load()
    path.write_text(_service("a", port=81) + "---\n" + ALIAS_BOMB)
    source.refresh()
    state = source.current()
    # The reading is not clean: what it shows valid applies, what it lost is kept.
    assert state.services[("default", "a")].ports[0].port == 81
    assert _names(state) == ["a", "b"]
    assert "YAML aliases?" in state.problems[0].message
