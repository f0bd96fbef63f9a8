"""RBAC against the calls the control plane really makes: the Kubernetes source and the leader
(election and duties) run against the fake API server, which notes every request; each must be
allowed by the rendered ClusterRole and Role for the control plane's service account."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control.install.names import Names
from control.install.values import InstallValues
from control.plane.sources.kube import KubeSource
from tests.control_kube.conftest import FAST, eventually, running
from tests.control_kube.fake_cluster import fake_cluster
from tests.install.rbac_check import Request, allowed, request_of
from tests.install.rendered import rendered
from tests.leader.ca import SwitchableRoots, TestCA
from tests.leader.conftest import make_candidate
from tests.leader.conftest import running as leading
from tests.leader.test_duties import install_webhooks, root_cert_maps

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_every_call_is_allowed(tmp_path: Path) -> None:
    values = InstallValues()
    objects = rendered()
    account = Names.of(values).control_plane
    with fake_cluster(tmp_path) as cluster:
        for name in (values.namespace, "shop"):
            cluster.namespace(name)
        install_webhooks(cluster)
        source = KubeSource(cluster.client, settings=FAST)
        await asyncio.to_thread(source.load)
        async with running(source):
            roots = SwitchableRoots(TestCA(tmp_path / "ca"))
            a, b = (make_candidate(cluster, n, roots, resync=0.2) for n in ("cp-a", "cp-b"))
            async with leading(a, b):
                await eventually(lambda: "shop" in root_cert_maps(cluster), 5, "the duties")
                cluster.namespace("later")
                await eventually(lambda: "later" in root_cert_maps(cluster), 5, "a new namespace")
                await asyncio.sleep(0.3)
        requests = {request_of(*r) for r in cluster.fake.requests}
    assert {r.verb for r in requests} >= {"list", "watch", "get", "create", "update", "patch"}
    denied = [r for r in requests if not allowed(objects, account, values.namespace, r)]
    assert not denied, f"RBAC does not allow: {sorted(map(str, denied))}"


def test_the_check_can_fail() -> None:
    values = InstallValues()
    objects = rendered()
    account = Names.of(values).control_plane
    assert not allowed(objects, account, values.namespace,
                       Request("update", "coordination.k8s.io", "leases", "shop", "x"))  # fmt: skip
    assert request_of("GET", "/api/v1/namespaces/shop", {}) == Request(
        "get", "", "namespaces", "", "shop"
    )
    assert request_of("GET", "/api/v1/pods", {"watch": "true"}).verb == "watch"
