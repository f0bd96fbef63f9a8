"""The control plane runs on the Kubernetes source exactly as on the file source: the initial
list is its first state, and a watch event reaches its snapshot cache (through the debouncer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from control.cli.control_process import ControlPlane, ControlSettings
from control.plane.sources.kube import KubeSource
from tests.control_kube.conftest import FAST, eventually, mesh_documents
from tests.control_kube.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.anyio


async def test_the_control_plane_serves_the_clusters_config_and_follows_it(
    fake: FakeApiServer, client: ApiClient, tmp_path: Path
) -> None:
    for document in mesh_documents():
        fake.apply(document)
    settings = ControlSettings(config_dir=tmp_path, xds_port=0, debug_port=0)
    async with ControlPlane(settings, source=KubeSource(client, settings=FAST)) as plane:
        assert ("shop", "reviews") in plane.cache.state.services
        fake.apply({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "details", "namespace": "shop"},
            "spec": {"clusterIP": "10.96.7.40", "ports": [{"name": "http", "port": 9080}]},
        })  # fmt: skip
        fake.delete("networking.istio.io/v1", "VirtualService", "reviews", "shop")
        await eventually(lambda: ("shop", "details") in plane.cache.state.services)
        await eventually(lambda: not plane.cache.state.virtual_services)
        assert ("shop", "reviews") in plane.cache.state.services
