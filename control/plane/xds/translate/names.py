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


def parse_outbound_cluster(name: str) -> tuple[int, str, str] | None:
    """`outbound|9080|v1|reviews.default.svc.cluster.local` -> (9080, "v1", host)."""
    parts = name.split("|")
    if len(parts) != 4 or parts[0] != "outbound" or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2], parts[3]
