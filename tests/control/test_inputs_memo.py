"""A proxy's inputs are computed once per shape (`MeshIndex.inputs`): replicas share them. The
memo key must hold everything of the proxy the computation reads; each test case changes one
such thing, and a key without it would hand the variant the first proxy's inputs."""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest

from control.plane.model.state import MeshState
from control.plane.xds.translate.index import MAX_CLAIMED_LABEL_BYTES, MeshIndex
from control.plane.xds.translate.proxy import CapturePorts, Proxy, parse_node
from tests.control.mesh_text import pod_yaml, state_of

MESH = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: one}
spec:
  clusterIP: 198.19.255.1
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web}, {name: tcp, port: 9000}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: two}
spec: {clusterIP: 198.19.255.2, selector: {app: web}, ports: [{name: http, port: 81}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: one}
spec: {clusterIP: 198.19.255.3, selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: one}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-only, namespace: one}
spec:
  selector: {matchLabels: {app: db}}
  rules: [{from: [{source: {namespaces: [one]}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web-local, namespace: one}
spec:
  host: db.one.svc.cluster.local
  workloadSelector: {matchLabels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: web-only, namespace: one}
spec:
  workloadSelector: {labels: {app: web}}
  egress: [{hosts: ["./*"]}]
"""
# name, namespace, ip, labels, the container port named `web`
PODS = [
    ("web-1", "one", "198.18.0.1", {"app": "web"}, 8080),
    ("web-2", "one", "198.18.0.2", {"app": "web"}, 8080),  # a replica of web-1
    ("web-3", "one", "198.18.0.3", {"app": "web"}, 8081),  # same labels, another port
    ("db-1", "one", "198.18.0.4", {"app": "db"}, 8080),
    ("web-1", "two", "198.18.0.5", {"app": "web"}, 8080),  # same name and labels elsewhere
]


def _state() -> MeshState:
    return state_of(MESH + "".join(pod_yaml(*pod) for pod in PODS))


def _proxy(pod: str, namespace: str, labels: dict[str, str] | None = None) -> Proxy:
    meta = {"LABELS": labels} if labels is not None else None
    return parse_node(f"sidecar~198.18.1.1~{pod}.{namespace}~{namespace}.svc.cluster.local", meta)


BASE = _proxy("web-1", "one")
VARIANTS = {
    "namespace": _proxy("web-1", "two"),
    "labels (the pod's)": _proxy("db-1", "one"),
    "labels (the node's, no pod)": _proxy("gone", "one", {"app": "db"}),
    "container ports": _proxy("web-3", "one"),
    "certificate (sds)": dataclasses.replace(BASE, sds=True),
    "inbound capture port": dataclasses.replace(BASE, capture=CapturePorts(15001, 15016)),
    "outbound capture port": dataclasses.replace(BASE, capture=CapturePorts(15011, 15006)),
}


@pytest.mark.parametrize("what", list(VARIANTS))
def test_a_proxy_differing_in_one_input_gets_its_own_inputs(what: str) -> None:
    state = _state()
    variant = VARIANTS[what]
    fresh = MeshIndex(state)
    assert fresh.compute_inputs(variant) != fresh.compute_inputs(BASE), "not a real variant"
    index = MeshIndex(state)
    index.inputs(BASE)  # memoized first: a key missing `what` would return it for the variant
    assert index.inputs(variant) == fresh.compute_inputs(variant)


def test_replicas_share_one_inputs_object() -> None:
    index = MeshIndex(_state())
    first = index.inputs(_proxy("web-1", "one"))
    replica = index.inputs(_proxy("web-2", "one"))
    assert replica is first
    assert first == MeshIndex(index.state).compute_inputs(_proxy("web-2", "one"))
    # Not the replica's shape: its own container port.
    assert index.inputs(_proxy("web-3", "one")) is not first


def test_labels_clients_claim_are_kept_within_a_budget() -> None:
    """A proxy of no known pod brings its own labels (node metadata, up to 256 KiB a stream on
    the plaintext port, any number of streams one after another); each shape key held them
    until the next state: 400 such streams kept 100 MB. Past the budget a shape is computed
    again each time instead, and still right."""
    index = MeshIndex(_state())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for client in range(400):
            labels = {
                f"k{client}-{n:04}": f"{client:08}{n:04}".ljust(240, "v") for n in range(1000)
            }
            proxy = _proxy(f"claimed-{client}", "one", labels)
            inputs = index.inputs(proxy)
            if client % 50 == 0:
                assert inputs == MeshIndex(index.state).compute_inputs(proxy)
            del labels, proxy
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert index.claimed_label_bytes <= MAX_CLAIMED_LABEL_BYTES
    assert held < MAX_CLAIMED_LABEL_BYTES * 1.5, f"{held / 2**20:.0f} MiB held"
    assert index.inputs(BASE) is index.inputs(BASE)  # a pod's shape is still kept
