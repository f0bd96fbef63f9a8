"""The `file` config source: reads a directory, sees edits, new and removed files and atomic
replacement by rename, reports invalid documents and skips them."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from control.plane.model.state import MeshState
from control.plane.sources.file import FileSource

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: 10.96.0.{octet}
  selector: {{app: {name}}}
  ports: [{{name: http, port: 80}}]
"""


def _service(name: str, octet: int = 1) -> str:
    return SERVICE.format(name=name, octet=octet)


def _names(state: MeshState) -> list[str]:
    return [name for _, name in state.services]


def _replace(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_reads_yaml_yml_json_and_skips_others(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a") + "---\n" + _service("b", 2))
    (tmp_path / "c.yml").write_text(_service("c", 3))
    (tmp_path / "d.json").write_text(
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "d"},'
        ' "spec": {"ports": [{"port": 81}]}}'
    )
    (tmp_path / "notes.txt").write_text(_service("ignored"))
    (tmp_path / ".hidden.yaml").write_text(_service("hidden"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.yaml").write_text(_service("e", 5))
    state = FileSource(tmp_path).load()
    assert _names(state) == ["a", "b", "c", "d", "e"]
    assert not state.problems


def test_invalid_documents_are_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(_service("good"))
    (tmp_path / "mixed.yaml").write_text(
        _service("first", 2)
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: broken}\n"
        + "spec: {ports: [{port: x}]}\n"
        + "---\n"
        + _service("after", 3)
    )
    (tmp_path / "syntax.yaml").write_text(_service("before-error", 4) + "---\nkey: [unclosed\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "deep.json").write_text("[" * 100_000)  # RecursionError in json, not a crash
    state = FileSource(tmp_path).load()
    assert _names(state) == ["after", "before-error", "first", "good"]
    problems = {p.origin.split("/")[-1]: p.message for p in state.problems}
    assert "spec.ports[0].port" in problems["mixed.yaml#1"]
    assert "invalid YAML at line" in problems["syntax.yaml#1"]
    assert "invalid JSON at line 1" in problems["bad.json"]
    assert "nested too deeply" in problems["deep.json"]


def test_refresh_sees_edits_removals_and_atomic_renames(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(_service("one"))
    source = FileSource(tmp_path)
    assert _names(source.load()) == ["one"]
    assert source.refresh() is False  # nothing changed, nothing rebuilt

    _replace(path, _service("two"))  # same size, new inode
    assert source.refresh() is True
    assert _names(source.current()) == ["two"]

    (tmp_path / "more.yaml").write_text(_service("three", 3))
    assert source.refresh() is True
    assert _names(source.current()) == ["three", "two"]

    (tmp_path / "more.yaml").unlink()
    assert source.refresh() is True
    assert _names(source.current()) == ["two"]


def test_a_vanished_directory_keeps_the_last_state(tmp_path: Path) -> None:
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "mesh.yaml").write_text(_service("kept"))
    source = FileSource(directory)
    source.load()
    (directory / "mesh.yaml").unlink()
    directory.rmdir()
    assert source.refresh() is False
    assert _names(source.current()) == ["kept"]


@pytest.mark.anyio
async def test_watch_reports_a_rename_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(_service("old"))
    source = FileSource(tmp_path, poll_interval=0.05)
    source.load()
    seen: asyncio.Queue[MeshState] = asyncio.Queue()
    task = asyncio.create_task(source.run(seen.put_nowait))
    try:
        await asyncio.sleep(0.1)
        started = time.monotonic()
        _replace(path, _service("new"))
        state = await asyncio.wait_for(seen.get(), 2)
        assert time.monotonic() - started < 0.9  # polled every 50 ms; slack for a busy CI
        assert _names(state) == ["new"]
    finally:
        task.cancel()
