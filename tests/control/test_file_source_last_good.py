"""The `file` source under failure: a listing that fails (out of file descriptors) and a file
that turns invalid, unparseable or truncated must keep the last good config, be reported, and
never reach a connected proxy as a deletion. Built as the attack: exhaust the descriptors, flip
the file, and watch the proxy's stream."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.cli.control_process import ControlPlane
from control.plane.model.state import MeshState
from control.plane.sources.file import FileSource
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE
from tests.control.ads_client import AdsClient
from tests.control.control_process import control_process
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.waiting import eventually

NODE = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: 10.96.0.{octet}
  selector: {{app: {name}}}
  ports: [{{name: http, port: {port}}}]
"""
RULE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: {name}, namespace: default}}
spec:
  host: {name}
  subsets: [{{name: {subset}, labels: {{version: v1}}}}]
"""


def _service(name: str, octet: int = 1, port: int | str = 80) -> str:
    return SERVICE.format(name=name, octet=octet, port=port)


def _rule(name: str, subset: str = "v1") -> str:
    return RULE.format(name=name, subset=subset)


def _names(state: MeshState) -> list[str]:
    return [name for _, name in state.services]


def _rules(state: MeshState) -> dict[str, list[str]]:
    return {r.name: [str(s.name) for s in r.spec.subsets] for r in state.destination_rules}


def _replace(path: Path, text: str) -> None:
    """An atomic save (write aside, rename over): the attack is the content, not the save."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@contextmanager
def no_free_descriptors() -> Iterator[None]:
    """Every file descriptor of this process in use, as under a connection flood (EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    probe = os.open(os.devnull, os.O_RDONLY)
    os.close(probe)
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe + 64, hard))
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as error:
                if error.errno != errno.EMFILE:
                    raise
                break
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_listing_that_fails_keeps_everything_and_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(_service("b", 2))
    errors: list[str] = []
    source = FileSource(tmp_path, count_error=errors.append)
    before = source.load()
    assert _names(before) == ["a", "b"]
    with no_free_descriptors():
        changed = source.refresh()
    assert changed is False
    assert source.current() is before
    assert errors == ["listing"]
    [problem] = source.problems()
    assert problem.origin == str(tmp_path)
    assert "cannot list" in problem.message
    assert "keeping the last state" in problem.message
    # Listed again: the problem goes, and a verified listing may now apply deletions.
    assert source.refresh() is False
    assert source.problems() == ()
    (tmp_path / "sub" / "b.yaml").unlink()
    (tmp_path / "a.yaml").unlink()
    assert source.refresh() is True
    assert _names(source.current()) == []


def test_a_file_that_cannot_be_looked_at_is_kept_and_the_rest_applies(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a"))
    (tmp_path / "b.yaml").write_text(_service("b", 2))
    errors: list[str] = []
    source = FileSource(tmp_path, count_error=errors.append)
    source.load()
    # stat fails (ELOOP), as it could for EACCES or EIO, which root cannot be made to see here.
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "b.yaml").symlink_to("b.yaml")
    (tmp_path / "a.yaml").write_text(_service("a", port=81))
    assert source.refresh() is True
    assert _names(source.current()) == ["a", "b"]
    assert source.current().services[("default", "a")].ports[0].port == 81
    assert errors == ["listing"]
    assert "b.yaml: document: cannot look at: Too many levels" in str(source.problems()[0])


def test_a_file_turning_invalid_keeps_the_objects_it_had(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text(_service("a") + "---\n" + _rule("a") + "---\n" + _rule("b"))
    errors: list[str] = []
    source = FileSource(tmp_path, count_error=errors.append)
    assert _rules(source.load()) == {"a": ["v1"], "b": ["v1"]}
    # `a` turns invalid and `b` changes validly: `a` keeps its last good version.
    path.write_text(_service("a") + "---\n" + _rule("a", "V1!") + "---\n" + _rule("b", "v2"))
    assert source.refresh() is True
    state = source.current()
    assert _rules(state) == {"a": ["v1"], "b": ["v2"]}
    messages = [p.message for p in state.problems]
    assert any("subsets[0].name" in m for m in messages), messages
    assert any("kept the last good version of DestinationRule default/a" in m for m in messages)
    assert errors == ["invalid"]


def test_a_file_that_no_longer_parses_or_is_cut_short_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    good = _service("a") + "---\n" + _rule("a") + "---\n" + _service("b", 2)
    path.write_text(good)
    errors: list[str] = []
    source = FileSource(tmp_path, count_error=errors.append)
    source.load()
    for broken in (good.replace("ports: [{", "ports: [{{"), good[: good.index("subsets") + 12]):
        path.write_text(broken)
        source.refresh()
        state = source.current()
        assert _names(state) == ["a", "b"], broken
        assert _rules(state) == {"a": ["v1"]}, broken
    assert errors == ["syntax", "syntax"]
    # A clean reading is the file's truth again: what it no longer holds is deleted.
    path.write_text(_service("a"))
    assert source.refresh() is True
    assert _names(source.current()) == ["a"]
    assert _rules(source.current()) == {}
    assert not source.current().problems


def test_a_file_emptied_by_a_save_in_progress_keeps_its_objects(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(_service("a") + "---\n" + _rule("a"))
    errors: list[str] = []
    source = FileSource(tmp_path, count_error=errors.append)
    source.load()
    path.write_text("")  # what `open(path, "w")` leaves until the write lands
    source.refresh()
    assert _names(source.current()) == ["a"]
    assert _rules(source.current()) == {"a": ["v1"]}
    assert errors == ["empty"]
    assert any("no documents" in p.message for p in source.current().problems)


def test_a_deleted_file_is_a_deletion(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_service("a") + "---\n" + _rule("a"))
    source = FileSource(tmp_path)
    source.load()
    (tmp_path / "a.yaml").write_text(_service("a", port="x"))  # broken first...
    source.refresh()
    assert _names(source.current()) == ["a"]
    (tmp_path / "a.yaml").unlink()  # ...then removed: its last good content goes too
    assert source.refresh() is True
    assert _names(source.current()) == []
    assert _rules(source.current()) == {}


# --- as a connected proxy sees it ---------------------------------------------------------------

ROUTE_NAMES = ["9080"]


async def _subscribed(client: AdsClient) -> dict[str, Any]:
    """Subscribe to the four types as Envoy does, ACK everything; the responses by type."""
    responses: dict[str, Any] = {}
    eds = ["outbound|9080|v1|reviews.default.svc.cluster.local"]
    subscriptions: list[tuple[str, list[str]]] = [
        (CLUSTER, []),
        (LISTENER, []),
        (ENDPOINT, eds),
        (ROUTE, ROUTE_NAMES),
    ]
    for type_url, names in subscriptions:
        client.send(type_url, names=names)
        responses[type_url] = await client.recv()
        client.ack(responses[type_url], names=names)
    assert await client.nothing_within(0.3)
    return responses


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as running:
        yield running


async def _configz(plane: ControlPlane) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(f"http://127.0.0.1:{plane.debug_port}/debug/configz")
    data: dict[str, Any] = response.json()
    return data


async def _metrics(base: str) -> str:
    async with httpx.AsyncClient(trust_env=False) as http:
        return (await http.get(f"{base}/metrics")).text


@pytest.mark.anyio
async def test_a_flipping_file_never_reaches_a_connected_proxy(plane: ControlPlane) -> None:
    assert plane.settings.config_dir is not None
    mesh = plane.settings.config_dir / "mesh.yaml"
    good = mesh.read_text()
    client = AdsClient(plane.xds_port, NODE)
    try:
        await _subscribed(client)
        invalid = good.replace("- name: v2\n    labels", "- name: V2!\n    labels")
        truncated = good[: good.index("loadBalancer: {simple: ROUND_ROBIN}") + 20]
        for broken, marker in ((invalid, "subsets[1].name"), (truncated, "invalid YAML")):
            _replace(mesh, broken)

            async def reported(marker: str = marker) -> bool:
                problems = (await _configz(plane))["problems"]
                return any(marker in p["message"] for p in problems)

            await eventually(reported, timeout=5, what=marker)
            assert await client.nothing_within(0.5), marker  # the proxy's config is unchanged
            _replace(mesh, good)
            await eventually(lambda: _no_problems(plane), timeout=5, what="clean again")
            assert await client.nothing_within(0.3)
        text = await _metrics(f"http://127.0.0.1:{plane.debug_port}")
        assert 'mizzen_config_source_errors_total{reason="invalid"} 1.0' in text
        assert 'mizzen_config_source_errors_total{reason="syntax"} 1.0' in text
        # The source is alive: a real change still arrives.
        edited = good.replace("weight: 80", "weight: 70").replace("weight: 20", "weight: 30")
        _replace(mesh, edited)
        assert (await client.recv()).type_url == ROUTE
    finally:
        await client.close()


async def _no_problems(plane: ControlPlane) -> bool:
    return not (await _configz(plane))["problems"]


@pytest.mark.anyio
async def test_out_of_descriptors_the_mesh_stays(tmp_path: Path) -> None:
    """`mizzen control` as a process whose descriptor limit drops below what it holds, when a
    change in the directory wakes it: every listing fails with EMFILE for a while (retried
    every 100 ms), and its proxy must not see the mesh go."""
    config = bookinfo_config(tmp_path)
    with control_process("--config-dir", str(config)) as running:
        client = AdsClient(running.ports["xds"], NODE)
        try:
            await _subscribed(client)
            soft, hard = resource.prlimit(running.process.pid, resource.RLIMIT_NOFILE)
            resource.prlimit(running.process.pid, resource.RLIMIT_NOFILE, (3, hard))
            touched = next(config.glob("*.yaml"))
            os.utime(touched)  # the same content: the source looks (inotify), cannot list
            started = time.monotonic()
            try:
                assert await client.nothing_within(1.5)  # ~14 failed listings
            finally:
                resource.prlimit(running.process.pid, resource.RLIMIT_NOFILE, (soft, hard))
            assert time.monotonic() - started >= 1.5
            await asyncio.sleep(0.3)  # listed again
            metrics = await _metrics(running.url("debug"))
            counted = [
                line for line in metrics.splitlines()
                if line.startswith('mizzen_config_source_errors_total{reason="listing"}')
            ]  # fmt: skip
            assert counted, metrics
            assert float(counted[0].split()[-1]) >= 3
            assert await client.nothing_within(0.3)
        finally:
            await client.close()
        running.stop_cleanly()
