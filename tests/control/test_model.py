"""The mesh model: documents -> MeshState; endpoints as the endpoints controller makes them."""

from __future__ import annotations

from typing import Any

import pytest

from control.plane.model.build import build_state
from control.plane.model.kube_objects import parse_pod
from control.plane.model.state import Document


def _service(name: str = "web", ns: str = "default", **spec: Any) -> dict[str, Any]:
    body = {
        "clusterIP": "10.96.0.1",
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80}],
    }
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def _pod(
    name: str, ip: str | None, labels: dict[str, str], ns: str = "default", **extra: Any
) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "status": {"podIP": ip} if ip else {},
    }
    for key, value in extra.items():
        if key == "status":
            pod["status"].update(value)
        elif key == "metadata":
            pod["metadata"].update(value)
        else:
            pod[key] = value
    return pod


def _state(*objects: Any) -> Any:
    return build_state([Document(f"test#{i}", obj) for i, obj in enumerate(objects)])


def _ips(state: Any, key: tuple[str, str] = ("default", "web"), port: int = 80) -> list[str]:
    return [e.ip for e in state.endpoints[key][port]]


def test_endpoints_follow_selector_readiness_and_namespace() -> None:
    state = _state(
        _service(),
        _pod("ready", "10.0.0.2", {"app": "web"}),
        _pod("also-ready", "10.0.0.1", {"app": "web", "extra": "x"}, status={"phase": "Running"}),
        _pod("not-ready", "10.0.0.3", {"app": "web"},
             status={"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
        _pod("pending", "10.0.0.4", {"app": "web"}, status={"phase": "Pending"}),
        _pod("no-ip", None, {"app": "web"}),
        _pod("finished", "10.0.0.5", {"app": "web"}, status={"phase": "Succeeded"}),
        _pod("terminating", "10.0.0.6", {"app": "web"}, metadata={"deletionTimestamp": "x"}),
        _pod("other-ns", "10.0.0.7", {"app": "web"}, ns="elsewhere"),
        _pod("other-app", "10.0.0.8", {"app": "db"}),
        _pod("ready-condition-true", "10.0.0.9", {"app": "web"},
             status={"conditions": [{"type": "Ready", "status": "True"}]}),
    )  # fmt: skip
    assert not state.problems
    assert _ips(state) == ["10.0.0.1", "10.0.0.2", "10.0.0.9"]  # sorted numerically


def test_named_target_port_resolves_per_pod() -> None:
    def pod(name: str, ip: str, port: int | None) -> dict[str, Any]:
        ports = [{"name": "web", "containerPort": port}] if port else []
        return _pod(name, ip, {"app": "web"}, spec={"containers": [{"name": "c", "ports": ports}]})

    state = _state(
        _service(ports=[{"name": "http", "port": 80, "targetPort": "web"}]),
        pod("a", "10.0.0.1", 8080),
        pod("b", "10.0.0.2", 9090),
        pod("c", "10.0.0.3", None),  # no such port: not an endpoint (as Kubernetes)
    )
    endpoints = state.endpoints[("default", "web")][80]
    assert [(e.ip, e.port) for e in endpoints] == [("10.0.0.1", 8080), ("10.0.0.2", 9090)]


def test_numeric_target_port_and_selectorless_service() -> None:
    state = _state(
        _service(ports=[{"name": "http", "port": 80, "targetPort": 8080}]),
        _service("manual", selector=None),
        _pod("a", "10.0.0.1", {"app": "web"}),
        _pod("m", "10.0.0.2", {"app": "manual"}),
    )
    assert [(e.ip, e.port) for e in state.endpoints[("default", "web")][80]] == [("10.0.0.1", 8080)]
    assert state.endpoints[("default", "manual")][80] == ()


def test_bad_documents_are_reported_and_skipped_the_rest_applies() -> None:
    state = _state(
        _service("good"),
        _service("bad-port", ports=[{"name": "http", "port": 70000}]),
        "just a string",
        {"kind": "Service"},
        {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
         "metadata": {"name": "vs"}, "spec": {"hosts": ["web"], "http": [{"timeout": "soon"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ignored"}},
        _service("good"),  # duplicate
    )  # fmt: skip
    assert list(state.services) == [("default", "good")]
    messages = [str(p) for p in state.problems]
    assert len(messages) == 5, messages
    assert any("spec.ports[0].port" in m and "bad-port" in m for m in messages)
    assert any("must be a mapping" in m for m in messages)
    assert any("apiVersion and kind" in m for m in messages)
    assert any("VirtualService vs" in m and "timeout" in m for m in messages)
    assert any("duplicate" in m for m in messages)
    assert state.virtual_services == ()


def test_lists_and_mesh_kinds_are_read_with_default_namespace() -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "web"},
        "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    }
    state = _state({"apiVersion": "v1", "kind": "List", "items": [_service(), vs]})
    assert not state.problems
    assert ("default", "web") in state.services
    assert [(v.namespace, v.name) for v in state.virtual_services] == [("default", "web")]


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        ({"podIP": "10.0.0.1"}, True),
        ({"podIP": "10.0.0.1", "phase": "Running"}, True),
        ({"podIP": "10.0.0.1", "phase": "Failed"}, False),
        ({"phase": "Running"}, False),
        ({"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "False"}]}, False),
        ({"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "Unknown"}]}, True),
    ],
)
def test_pod_readiness(status: dict[str, Any], ready: bool) -> None:
    pod = parse_pod({"metadata": {"name": "p"}, "status": status})
    assert pod.ready is ready
