"""Services without a selector take their endpoints from their EndpointSlices, as kube-proxy
reads them; Services with a selector keep the endpoints derived from their pods."""

from __future__ import annotations

from typing import Any

from control.plane.model.build import BuildCache, build_state
from control.plane.model.state import Document, MeshState
from tests.control.test_model import _pod, _service


def _slice(
    name: str,
    service: str | None,
    endpoints: list[dict[str, Any]],
    ports: list[dict[str, Any]] | None = None,
    address_type: str = "IPv4",
    ns: str = "default",
) -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": service} if service else {}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "addressType": address_type,
        "ports": [{"name": "http", "port": 5432, "protocol": "TCP"}] if ports is None else ports,
        "endpoints": endpoints,
    }


def _endpoint(ip: str, **extra: Any) -> dict[str, Any]:
    return {"addresses": [ip], **extra}


def _state(*objects: Any, cache: BuildCache | None = None) -> MeshState:
    documents = [Document(f"test#{i}", obj) for i, obj in enumerate(objects)]
    return build_state(documents, cache=cache)


def _found(state: MeshState, name: str = "db", port: int = 80) -> list[tuple[str, int]]:
    return [(e.ip, e.port) for e in state.endpoints[("default", name)][port]]


def test_a_selectorless_service_gets_the_ready_endpoints_of_its_slices() -> None:
    state = _state(
        _service("db", selector=None),
        _slice("db-a", "db", [
            _endpoint("198.18.0.2"),  # no conditions: ready, as Kubernetes reads it
            _endpoint("198.18.0.1", conditions={"ready": True}),
            _endpoint("198.18.0.3", conditions={"ready": False}),
            _endpoint("198.18.0.4", conditions={"ready": True, "terminating": True}),
        ]),
        _slice("db-b", "db", [_endpoint("198.18.0.5"), _endpoint("198.18.0.1")]),
        _slice("other", "elsewhere", [_endpoint("198.18.0.9")]),
        _slice("no-owner", None, [_endpoint("198.18.0.10")]),
    )  # fmt: skip
    assert not state.problems
    assert _found(state) == [("198.18.0.1", 5432), ("198.18.0.2", 5432), ("198.18.0.5", 5432)]


def test_slice_ports_match_the_service_port_by_name_and_protocol() -> None:
    state = _state(
        _service("db", selector=None, ports=[
            {"name": "sql", "port": 80}, {"name": "metrics", "port": 9000}, {"port": 53,
             "name": "dns", "protocol": "UDP"}]),
        _slice("db-a", "db", [_endpoint("198.18.0.1")], ports=[
            {"name": "sql", "port": 5432, "protocol": "TCP"},
            {"name": "dns", "port": 5353, "protocol": "TCP"}]),  # TCP: not the UDP port
    )  # fmt: skip
    assert _found(state) == [("198.18.0.1", 5432)]
    assert _found(state, port=9000) == []
    assert _found(state, port=53) == []


def test_an_endpoint_naming_a_known_pod_carries_its_labels_and_service_account() -> None:
    pod = _pod("db-0", "198.18.0.1", {"app": "db", "version": "v2"},
               spec={"serviceAccountName": "postgres"})  # fmt: skip
    target = {"kind": "Pod", "name": "db-0", "namespace": "default"}
    state = _state(
        _service("db", selector=None),
        pod,
        _slice("db-a", "db", [_endpoint("198.18.0.1", targetRef=target), _endpoint("198.18.0.2")]),
    )
    first, second = state.endpoints[("default", "db")][80]
    assert (first.pod, first.service_account, dict(first.labels)) == (
        "db-0", "postgres", {"app": "db", "version": "v2"},
    )  # fmt: skip
    assert (second.pod, second.service_account, dict(second.labels)) == ("", "", {})


def test_a_service_with_a_selector_ignores_slices() -> None:
    state = _state(
        _service("web"),
        _pod("a", "198.18.0.1", {"app": "web"}),
        _slice(
            "web-stale", "web", [_endpoint("198.18.0.99")], ports=[{"name": "http", "port": 80}]
        ),
    )
    assert _found(state, "web") == [("198.18.0.1", 80)]


def test_fqdn_slices_are_skipped_and_a_broken_slice_is_a_problem_naming_the_field() -> None:
    state = _state(
        _service("db", selector=None),
        _slice("db-fqdn", "db", [_endpoint("db.example.com")], address_type="FQDN"),
        _slice("db-bad", "db", [{"addresses": []}]),
        _slice("db-ok", "db", [_endpoint("198.18.0.1")]),
    )
    assert _found(state) == [("198.18.0.1", 5432)]
    assert [(p.name, p.message) for p in state.problems] == [
        ("db-bad", "endpoints[0].addresses: must be a non-empty list of strings")
    ]


def test_endpoints_follow_a_slice_change_through_the_build_cache() -> None:
    cache = BuildCache()
    service = _service("db", selector=None)
    before = _state(service, _slice("db-a", "db", [_endpoint("198.18.0.1")]), cache=cache)
    after = _state(service, _slice("db-a", "db", [_endpoint("198.18.0.2")]), cache=cache)
    assert (_found(before), _found(after)) == ([("198.18.0.1", 5432)], [("198.18.0.2", 5432)])
