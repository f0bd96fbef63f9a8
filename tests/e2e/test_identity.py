"""Identity in the local mesh, on the wire: each sidecar's Envoy holds the certificate of its
own service account (from the control plane's CA, over the CA port, with its token), and its
xDS stream to the secure port is mutual TLS with the control plane's name checked; a sidecar in
another namespace gets that namespace's identity; nothing was refused on the secure port."""

from __future__ import annotations

import re
import sys

import pytest

from control.cli.demo import sample
from control.cli.demo.mesh import run_in
from tests.e2e.conftest import Mesh

pytestmark = [pytest.mark.netns, pytest.mark.envoy]
_FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"


def _control_metric(mesh: Mesh, name: str) -> float:
    text = run_in(mesh.topology.host, [sys.executable, "-c", _FETCH,
                                       "http://127.0.0.1:15014/metrics"])  # fmt: skip
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in the control plane's metrics"
    return float(match.group(1))


def test_the_sidecars_hold_their_own_identity_and_use_mutual_tls(mesh: Mesh) -> None:
    assert mesh.identity is not None
    assert mesh.certificate_uris(mesh.client) == [
        f"spiffe://cluster.local/ns/{sample.NAMESPACE}/sa/client"
    ]
    assert mesh.envoy_stat(mesh.client, "cluster.xds-grpc.ssl.handshake") >= 1
    assert mesh.envoy_stat(mesh.client, "cluster.xds-grpc.ssl.fail_verify_san") == 0
    # Traffic flows with the sidecars configured over the secure port.
    summary = mesh.requests(10)
    assert summary.errors == 0, summary.first_error


def test_a_sidecar_in_another_namespace_gets_that_namespaces_identity(mesh: Mesh) -> None:
    pod = mesh.add_sidecar("shop-web", namespace="shop", service_account="web")
    assert mesh.certificate_uris(pod) == ["spiffe://cluster.local/ns/shop/sa/web"]
    assert mesh.envoy_stat(pod, "cluster.xds-grpc.ssl.handshake") >= 1
    assert _control_metric(mesh, "citadel_server_success_cert_issuance_count") >= 3
    assert _control_metric(mesh, "mizzen_xds_identity_refused_total") == 0
