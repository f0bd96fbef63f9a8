"""Translation details that golden files do not pin down on their own."""

from __future__ import annotations

import pytest

from control.config.loader import parse_text
from control.plane.model.build import build_state
from control.plane.model.state import Document
from control.plane.xds.translate import consistency
from control.plane.xds.translate.http_routes import per_million
from control.plane.xds.translate.index import MeshIndex
from control.plane.xds.translate.port_protocol import Protocol, port_protocol
from control.plane.xds.translate.proxy import ProxyIdError, parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, Resources
from tests.control.translate_cases import CASES_DIR


@pytest.mark.parametrize(
    ("name", "app_protocol", "expected"),
    [
        ("http", None, Protocol.HTTP),
        ("http-web", None, Protocol.HTTP),
        ("HTTP2", None, Protocol.HTTP2),
        ("grpc-api", None, Protocol.GRPC),
        ("grpc-web-ui", None, Protocol.GRPC_WEB),
        ("tcp-db", None, Protocol.TCP),
        ("mysql", None, Protocol.MYSQL),
        ("web", None, Protocol.TCP),  # unknown prefix: TCP (Istio would sniff)
        ("httpx", None, Protocol.TCP),  # a prefix needs its dash
        ("", None, Protocol.TCP),
        ("tcp", "http", Protocol.HTTP),  # appProtocol wins
        ("web", "kubernetes.io/h2c", Protocol.HTTP2),
        ("http", "unknown-thing", Protocol.HTTP),
    ],
)
def test_port_protocol(name: str, app_protocol: str | None, expected: Protocol) -> None:
    assert port_protocol(name, app_protocol) is expected


def test_node_id_and_metadata() -> None:
    proxy = parse_node(
        "sidecar~10.1.2.3~web-5d8.shop~shop.svc.cluster.local",
        {"LABELS": {"app": "web"}, "SERVICE_ACCOUNT": "web-sa"},
    )
    assert (proxy.ip, proxy.pod, proxy.namespace) == ("10.1.2.3", "web-5d8", "shop")
    assert proxy.labels == {"app": "web"}
    assert proxy.service_account == "web-sa"
    assert proxy.key == "web-5d8.shop"


@pytest.mark.parametrize(
    "node_id",
    ["", "router~1.2.3.4~gw.ns~ns.svc", "sidecar~1.2.3.4~nodot~ns.svc", "sidecar~~a.b~b.svc", "x"],
)
def test_bad_node_ids(node_id: str) -> None:
    with pytest.raises(ProxyIdError, match="node id"):
        parse_node(node_id)


@pytest.mark.parametrize(("value", "numerator"), [(None, 1_000_000), (12.5, 125_000), (0.1, 1000)])
def test_fault_percentages_are_per_million(value: float | None, numerator: int) -> None:
    assert per_million(value) == {"numerator": numerator, "denominator": "MILLION"}


def _bookinfo() -> Resources:
    documents, _ = parse_text((CASES_DIR / "bookinfo" / "mesh.yaml").read_text(), "mesh.yaml")
    state = build_state(documents)
    return translate(state, parse_node((CASES_DIR / "bookinfo" / "proxy.txt").read_text().strip()))


def test_consistency_finds_every_dangling_reference() -> None:
    resources = _bookinfo()
    assert consistency.problems(resources) == []
    by_type = {t: list(resources.of(t).values()) for t in resources.by_type}
    gone = "outbound|9080|v2|reviews.default.svc.cluster.local"
    by_type[CLUSTER] = [c for c in by_type[CLUSTER] if c.name != gone]  # type: ignore[attr-defined]
    by_type[ENDPOINT] = [
        e for e in by_type[ENDPOINT]
        if e.cluster_name != "outbound|9080||reviews.default.svc.cluster.local"  # type: ignore[attr-defined]
    ]  # fmt: skip
    by_type[ROUTE] = [r for r in by_type[ROUTE] if r.name != "9090"]  # type: ignore[attr-defined]
    problems = consistency.problems(Resources.of_messages(by_type))
    assert any("no cluster" in p and gone in p for p in problems)
    assert any("listener 0.0.0.0_9090: no route '9090'" in p for p in problems)
    assert any("no endpoints" in p and "reviews.default" in p for p in problems)
    assert len(by_type[LISTENER]) == len(resources.of(LISTENER))


def test_proxy_labels_come_from_its_pod_and_select_source_label_routes() -> None:
    text = """
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec: {clusterIP: 10.96.0.2, selector: {app: api}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: caller, namespace: default, labels: {app: caller, tier: gold}}
status: {podIP: 10.0.0.9}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api]
  http:
  - match: [{sourceLabels: {tier: gold}}]
    directResponse: {status: 299}
"""
    state = build_state([Document("t", d.obj) for d in parse_text(text, "t.yaml")[0]])
    node = "sidecar~10.0.0.9~caller.default~default.svc.cluster.local"
    gold = translate(state, parse_node(node)).to_json()  # labels from the Pod, not the node
    stranger = translate(state, parse_node(node.replace("caller", "other"))).to_json()

    def first_route(resources: dict[str, list[dict[str, object]]]) -> object:
        route = next(r for r in resources["rds"] if r["name"] == "80")
        return route["virtual_hosts"][0]["routes"][0]  # type: ignore[index]

    assert first_route(gold)["direct_response"] == {"status": 299}  # type: ignore[index]
    assert "direct_response" not in first_route(stranger)  # type: ignore[operator]


def test_replicas_share_a_translation_key_and_get_equal_resources() -> None:
    documents, _ = parse_text((CASES_DIR / "bookinfo" / "mesh.yaml").read_text(), "mesh.yaml")
    state = build_state(documents)
    v1 = parse_node("sidecar~10.244.0.21~reviews-v1-aaa.default~default.svc.cluster.local")
    v2 = parse_node("sidecar~10.244.0.22~reviews-v2-bbb.default~default.svc.cluster.local")
    # A replica the state does not know yet, with v1's labels from its node metadata.
    twin = parse_node(
        "sidecar~10.244.0.99~reviews-v1-zzz.default~default.svc.cluster.local",
        {"LABELS": {"app": "reviews", "version": "v1"}},
    )
    index = MeshIndex(state)
    # v1 and v2 differ only in labels no VirtualService matches on: one translation serves both.
    assert index.inputs(v1) == index.inputs(v2)
    assert translate(state, v1) == translate(state, v2)
    assert index.inputs(v1) != index.inputs(twin)  # named ports unknown
    same = parse_node("sidecar~10.244.0.21~reviews-v1-aaa.default~default.svc.cluster.local")
    assert index.inputs(v1) == index.inputs(same)
    assert translate(state, v1).to_json() == translate(state, same).to_json()
    assert translate(state, v1).to_json() != translate(state, twin).to_json()  # no inbound 8080


def test_a_dynamic_dns_service_entry_is_accepted_and_not_programmed() -> None:
    """Istio's DYNAMIC_DNS resolution (issue 17): valid, warned about, and given no cluster
    rather than one of another resolution's semantics."""
    text = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dynamic, namespace: default}
spec: {hosts: ["*.example.com"], ports: [{number: 80, name: http, protocol: HTTP}],
       resolution: DYNAMIC_DNS}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static, namespace: default}
spec: {hosts: [api.example.com], ports: [{number: 80, name: http, protocol: HTTP}],
       resolution: DNS}
"""
    state = build_state([Document("t", d.obj) for d in parse_text(text, "t.yaml")[0]])
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    names = set(
        translate(state, parse_node("sidecar~10.0.0.9~c.default~default.svc.x")).of(CLUSTER)
    )
    assert "outbound|80||api.example.com" in names
    assert not [n for n in names if "example.com" in n and "api." not in n]
