"""Who is asking: a proxy's identity from its xDS node (Istio's node id and metadata keys)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control.config.node_metadata import (
    META_LABELS,
    META_NAME,
    META_NAMESPACE,
    META_PROXY_PORTS,
    META_SDS,
    META_SERVICE_ACCOUNT,
    NODE_TYPE,
    PORT_INBOUND,
    PORT_OUTBOUND,
)
from control.plane.model.state import MeshState
from control.plane.xds.translate import names


class ProxyIdError(ValueError):
    """A node id that is not `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>`."""


@dataclass(frozen=True, slots=True)
class CapturePorts:
    """Where the redirect sends captured traffic (`mizzen init --outbound-port/--inbound-port`,
    told by the agent in `PROXY_PORTS`): the capture listeners must bind the same ports."""

    outbound: int = names.OUTBOUND_CAPTURE_PORT
    inbound: int = names.INBOUND_CAPTURE_PORT


DEFAULT_CAPTURE = CapturePorts()


def _capture_ports(value: Any) -> CapturePorts:
    """`PROXY_PORTS`' capture ports; absent ones keep Istio's 15001/15006, a bad one is refused
    (a listener on the wrong port would silently lose every redirected connection)."""
    if value is None:
        return DEFAULT_CAPTURE
    if not isinstance(value, Mapping):
        raise ProxyIdError(f"node metadata {META_PROXY_PORTS} is not an object")
    ports: dict[str, int] = {}
    for key in (PORT_OUTBOUND, PORT_INBOUND):
        raw = value.get(key)
        if raw is None:
            continue
        # A protobuf Struct carries numbers as floats.
        if not isinstance(raw, int | float) or isinstance(raw, bool) or raw != int(raw):
            raise ProxyIdError(f"node metadata {META_PROXY_PORTS}.{key}: {str(raw)[:50]!r}")
        if not 1 <= int(raw) <= 65535:
            raise ProxyIdError(f"node metadata {META_PROXY_PORTS}.{key}: {int(raw)} not a port")
        ports[key] = int(raw)
    capture = CapturePorts(**ports)
    if capture.outbound == capture.inbound:
        raise ProxyIdError(
            f"node metadata {META_PROXY_PORTS}: outbound and inbound capture ports are both "
            f"{capture.outbound}"
        )
    return capture


@dataclass(frozen=True, slots=True)
class Proxy:
    """One sidecar. `labels` come from its Pod when the mesh state knows it (the authority),
    otherwise from the node metadata the proxy sent."""

    node_id: str
    ip: str
    pod: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str = "default"
    sds: bool = False  # the agent serves a workload certificate: mTLS is possible
    capture: CapturePorts = DEFAULT_CAPTURE

    @property
    def key(self) -> str:
        """How the debug endpoints name it: `<pod>.<namespace>`."""
        return f"{self.pod}.{self.namespace}"


def _is_address(text: str) -> bool:
    """An IP address, without an IPv6 zone id (`ipaddress` takes any text after the `%`)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


def parse_node(node_id: str, metadata: Mapping[str, Any] | None = None) -> Proxy:
    """Read Istio's node id; `metadata` (the node's struct as a dict) may add labels and the
    service account (the keys of the agent's contract, `control.config.node_metadata`)."""
    parts = node_id.split("~")
    if len(parts) != 4 or parts[0] != NODE_TYPE:
        raise ProxyIdError(
            f"node id {node_id[:200]!r} is not "
            "sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.<domain>"
        )
    _, ip, pod_dot_ns, _ = parts
    pod, dot, namespace = pod_dot_ns.rpartition(".")
    if not ip or not dot or not pod or not namespace:
        raise ProxyIdError(f"node id {node_id[:200]!r}: expected <ip> and <pod>.<namespace>")
    if not _is_address(ip):
        raise ProxyIdError(f"node id {node_id[:200]!r}: {ip[:64]!r} is not an IP address")
    meta = metadata or {}
    raw_labels = meta.get(META_LABELS)
    labels = (
        {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
    )
    account = meta.get(META_SERVICE_ACCOUNT)
    return Proxy(
        node_id=node_id,
        ip=ip,
        pod=str(meta.get(META_NAME) or pod),
        namespace=str(meta.get(META_NAMESPACE) or namespace),
        labels=labels,
        service_account=account if isinstance(account, str) and account else "default",
        sds=meta.get(META_SDS) == "true",
        capture=_capture_ports(meta.get(META_PROXY_PORTS)),
    )


def with_workload(proxy: Proxy, state: MeshState) -> Proxy:
    """The proxy as the mesh state knows it: its Pod's labels and service account win."""
    pod = state.workload(proxy.namespace, proxy.pod)
    if pod is None:
        return proxy
    return Proxy(
        node_id=proxy.node_id,
        ip=pod.ip or proxy.ip,
        pod=proxy.pod,
        namespace=proxy.namespace,
        labels=dict(pod.labels),
        service_account=pod.service_account,
        sds=proxy.sds,
        capture=proxy.capture,
    )
