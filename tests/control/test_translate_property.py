"""Whatever the mesh's configuration, a translation is consistent by construction: generated
meshes (destinations to missing hosts, subsets and ports included) never produce a dangling
reference, and every resource is valid protobuf."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.config.mesh_config import MeshConfig, OutboundMode, OutboundTrafficPolicy
from control.plane.model.build import build_state
from control.plane.model.state import Document
from control.plane.xds.translate import consistency
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate

NAMES = ["web", "api", "db", "ghost"]
NAMESPACES = ["a", "b"]
PORTS = [80, 8080, 9090]
PORT_NAMES = ["http", "grpc", "tcp", "web", "http2-x"]
VERSIONS = ["v1", "v2", "v3"]


@st.composite
def services(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for index, name in enumerate(draw(st.lists(st.sampled_from(NAMES[:3]), unique=True))):
        ports = draw(st.lists(st.sampled_from(PORTS), min_size=1, max_size=2, unique=True))
        found.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": draw(st.sampled_from(NAMESPACES))},
            "spec": {
                "clusterIP": f"10.96.0.{index + 1}", "selector": {"app": name},
                "ports": [{"name": draw(st.sampled_from(PORT_NAMES)), "port": p} for p in ports],
            },
        })  # fmt: skip
    return found


@st.composite
def pods(draw: st.DrawFn) -> list[dict[str, Any]]:
    found = []
    for index in range(draw(st.integers(0, 5))):
        found.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": f"pod-{index}", "namespace": draw(st.sampled_from(NAMESPACES)),
                "labels": {"app": draw(st.sampled_from(NAMES)),
                           "version": draw(st.sampled_from(VERSIONS))},
            },
            "status": {"podIP": f"10.244.0.{index + 1}",
                       "phase": draw(st.sampled_from(["Running", "Pending"]))},
        })  # fmt: skip
    return found


destinations = st.fixed_dictionaries(
    {"host": st.sampled_from([*NAMES, "api.b.svc.cluster.local", "ext.example.com"])},
    optional={
        "subset": st.sampled_from(VERSIONS),
        "port": st.builds(lambda n: {"number": n}, st.sampled_from([*PORTS, 7])),
    },
)


@st.composite
def routing(draw: st.DrawFn) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for index, host in enumerate(draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))):
        namespace = draw(st.sampled_from(NAMESPACES))
        targets = draw(st.lists(destinations, min_size=1, max_size=3))
        weights = [100 // len(targets)] * len(targets)
        weights[0] += 100 - sum(weights)
        rule: dict[str, Any] = {
            "route": [
                {"destination": d, "weight": w} for d, w in zip(targets, weights, strict=True)
            ]
        }
        if draw(st.booleans()):
            rule["mirror"] = draw(destinations)
        if draw(st.booleans()):
            rule["match"] = [{"uri": {"prefix": "/x"}, "port": draw(st.sampled_from(PORTS))}]
        found.append({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": f"vs-{index}", "namespace": namespace},
            "spec": {"hosts": [host], "http": [rule],
                     "tcp": [{"route": [{"destination": targets[0]}]}]},
        })  # fmt: skip
        found.append({
            "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": f"dr-{index}", "namespace": namespace},
            "spec": {"host": host, "subsets": [
                {"name": v, "labels": {"version": v}}
                for v in draw(st.lists(st.sampled_from(VERSIONS), unique=True))
            ]},
        })  # fmt: skip
    if draw(st.booleans()):
        resolution = draw(st.sampled_from(["DNS", "STATIC", "NONE"]))
        entry: dict[str, Any] = {
            "hosts": ["ext.example.com"],
            "addresses": ["192.0.2.100"],
            "resolution": resolution,
            "ports": [{"number": draw(st.sampled_from(PORTS)), "name": "http",
                       "protocol": draw(st.sampled_from(["HTTP", "TCP"]))}],
        }  # fmt: skip
        if resolution != "NONE":
            entry["endpoints"] = [{"address": "192.0.2.1"}]
        found.append({
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "ext", "namespace": "a"}, "spec": entry,
        })  # fmt: skip
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(services(), pods(), routing(), st.booleans(), st.sampled_from(NAMESPACES))
def test_translation_is_always_consistent(
    kube: list[dict[str, Any]],
    workloads: list[dict[str, Any]],
    mesh: list[dict[str, Any]],
    registry_only: bool,
    namespace: str,
) -> None:
    documents = [Document(f"doc#{i}", obj) for i, obj in enumerate([*kube, *workloads, *mesh])]
    mode = OutboundMode.REGISTRY_ONLY if registry_only else OutboundMode.ALLOW_ANY
    state = build_state(
        documents, MeshConfig(outbound_traffic_policy=OutboundTrafficPolicy(mode=mode))
    )
    proxy = parse_node(f"sidecar~10.244.0.1~pod-0.{namespace}~{namespace}.svc.cluster.local")
    resources = translate(state, proxy)
    assert consistency.problems(resources) == []
