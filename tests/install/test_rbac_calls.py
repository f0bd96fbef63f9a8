"""RBAC against the calls the control plane really makes: the Kubernetes source, the leader
(election and duties) and the CA (its Secrets, a replica losing the race to create them, a
TokenReview) run against the fake API server, which notes every request; each must be allowed
by the rendered ClusterRole and Role for the control plane's service account."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from control.identity.keys import KeySpec, generate_key
from control.install import names as install_names
from control.install.names import Names
from control.install.values import InstallValues
from control.plane.ca import kube_store
from control.plane.ca.authority import bootstrap
from control.plane.ca.kube_calls import KubeJson
from control.plane.ca.kube_store import KubeCaStore, KubeSecretSource
from control.plane.ca.material import CaMaterial, self_signed_root
from control.plane.ca.tokenreview import KubeTokenReviewer
from control.plane.sources.kube import KubeSource
from tests.ca.conftest import NOW
from tests.control.credential_certs import TestCa, tls_secret
from tests.control_kube.conftest import FAST, eventually, running
from tests.control_kube.fake_apiserver import FakeApiServer
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
        # A credentialName: its Secret (and `-cacert`) listed and watched by name in "shop".
        cluster.fake.apply(credential_rule())
        cluster.fake.apply(tls_secret("shop", "pay", None, TestCa("roots").pem))
        source = KubeSource(cluster.client, settings=FAST)
        state = await asyncio.to_thread(source.load)
        assert ("shop", "pay") in state.credentials
        async with running(source):
            await eventually(lambda: _secret_watches(cluster.fake) == 2, 5, "the secret watches")
            roots = SwitchableRoots(TestCA(tmp_path / "ca"))
            a, b = (make_candidate(cluster, n, roots, resync=0.2) for n in ("cp-a", "cp-b"))
            async with leading(a, b):
                await eventually(lambda: "shop" in root_cert_maps(cluster), 5, "the duties")
                cluster.namespace("later")
                await eventually(lambda: "later" in root_cert_maps(cluster), 5, "a new namespace")
                await asyncio.sleep(0.3)
        await asyncio.to_thread(_ca_calls, cluster.client, cluster.fake, values.namespace)
        requests = {request_of(*r) for r in cluster.fake.requests}
    assert {r.verb for r in requests} >= {"list", "watch", "get", "create", "update", "patch"}
    assert {r.resource for r in requests} >= {"secrets", "tokenreviews", "leases", "configmaps"}
    denied = [r for r in requests if not allowed(objects, account, values.namespace, r)]
    assert not denied, f"RBAC does not allow: {sorted(map(str, denied))}"


def credential_rule() -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "payments", "namespace": "shop"},
        "spec": {"host": "api.payments.example",
                 "workloadSelector": {"matchLabels": {"app": "checkout"}},
                 "trafficPolicy": {"tls": {"mode": "SIMPLE", "credentialName": "pay"}}},
    }  # fmt: skip


def _secret_watches(fake: FakeApiServer) -> int:
    return len({
        q.get("fieldSelector") for _, path, q in fake.requests
        if path == "/api/v1/namespaces/shop/secrets" and q.get("watch") == "true"
    })  # fmt: skip


def _root() -> CaMaterial:
    return self_signed_root(generate_key(KeySpec()), NOW, "cluster.local")


def _ca_calls(client: ApiClient, fake: FakeApiServer, namespace: str) -> None:
    """The CA's calls as `mizzen control --kube` makes them (`ca_wiring`): two replicas start,
    each looks for a plug-in CA (`cacerts`) and `mizzen-ca`; the second's create loses (409) and
    it reads the winner's; then a workload's token is reviewed."""
    api = KubeJson(client)
    for _ in range(2):
        bootstrap(KubeCaStore(api, namespace), KubeSecretSource(api, namespace), _root)
    loser = KubeCaStore(api, namespace)
    loser.create(_root())  # 409 Conflict, then a read of the winner's
    token = fake.tokens.issue("shop", "web", audiences=(install_names.TOKEN_AUDIENCE,))
    assert KubeTokenReviewer(api).review(token, (install_names.TOKEN_AUDIENCE,)).authenticated


def test_the_secret_names_are_the_cas() -> None:
    assert install_names.CA_SECRET == kube_store.CA_SECRET
    assert install_names.PLUGIN_CA_SECRET == kube_store.PLUGIN_SECRET


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
