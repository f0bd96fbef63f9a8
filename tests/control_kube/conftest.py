"""Fixtures: a fake API server per test, a client made from a kubeconfig pointing at it (the
same edge code `mizzen control --kube --kubeconfig` uses), and timings shrunk for tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from control.plane.kube.reflector import KubeSettings
from control.plane.model.state import MeshState
from control.plane.sources.kube import KubeSource, kube_client
from tests.control_kube.fake_apiserver import FakeApiServer

TOKEN = "test-token-for-the-fake"
TESTDATA = Path(__file__).parent / "testdata"

FAST = KubeSettings(
    page_size=2,  # small pages, so lists are paginated
    watch_timeout=30,
    read_slack=10,
    connect_timeout=1,
    list_timeout=5,
    backoff_initial=0.05,
    backoff_max=0.3,
    absent_retry=0.3,
    sync_timeout=3,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def mesh_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((TESTDATA / "mesh.yaml").read_text()) if d]


def write_kubeconfig(directory: Path, server: str, token: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
        "current-context": "fake",
    }
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(token=TOKEN) as server:
        yield server


@contextlib.contextmanager
def client_for(server: FakeApiServer, directory: Path) -> Iterator[ApiClient]:
    """A client made as `--kubeconfig FILE` makes it, pointing at `server`."""
    api = kube_client(write_kubeconfig(directory, server.url, TOKEN))
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def client(fake: FakeApiServer, tmp_path: Path) -> Iterator[ApiClient]:
    with client_for(fake, tmp_path) as api:
        yield api


@contextlib.asynccontextmanager
async def running(source: KubeSource) -> AsyncIterator[list[MeshState]]:
    """Run the source's watch loop; yields the list of states it reported, in order."""
    states: list[MeshState] = []
    task = asyncio.create_task(source.run(states.append))
    try:
        yield states
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], object], timeout: float = 5.0, what: str = "") -> float:
    """Poll `check` until truthy; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started
