"""Istio's names for Envoy resources, in one place (tools and dashboards rely on them)."""

from __future__ import annotations

from typing import Final

VIRTUAL_OUTBOUND: Final = "virtualOutbound"
VIRTUAL_INBOUND: Final = "virtualInbound"
PASSTHROUGH_CLUSTER: Final = "PassthroughCluster"
BLACKHOLE_CLUSTER: Final = "BlackHoleCluster"
INBOUND_PASSTHROUGH_CLUSTER: Final = "InboundPassthroughCluster"
OUTBOUND_CAPTURE_PORT: Final = 15001
INBOUND_CAPTURE_PORT: Final = 15006
INBOUND_PASSTHROUGH_SOURCE: Final = "127.0.0.6"  # the redirect lets this source through
WILDCARD: Final = "0.0.0.0"


def outbound_cluster(port: int, host: str, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{host}"


def inbound_cluster(port: int) -> str:
    return f"inbound|{port}||"


def listener_name(address: str, port: int) -> str:
    return f"{address}_{port}"


def route_name(port: int) -> str:
    return str(port)
