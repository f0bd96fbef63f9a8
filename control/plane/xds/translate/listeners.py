"""Listeners (LDS) for one proxy, laid out as Istio's sidecars are:

- `virtualOutbound` binds 15001 (the outbound redirect's target) and, with `use_original_dst`,
  hands each connection to the listener of its original destination: `0.0.0.0_<port>` for HTTP
  ports (routed by Host through RDS route `<port>`), `<vip>_<port>` for TCP ports. Connections to
  anything else pass through (ALLOW_ANY) or hit the black hole (REGISTRY_ONLY).
- `virtualInbound` binds 15006 (the inbound redirect's target) with a filter chain per port of
  the proxy's own workload, matched on the original destination port.

A proxy whose agent reports other capture ports (`PROXY_PORTS`) gets its listeners there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from control.plane.xds.translate import names
from control.plane.xds.translate.authz.inbound import NO_POLICY, InboundPolicy
from control.plane.xds.translate.clusters import InboundPort
from control.plane.xds.translate.filters import (
    http_connection_manager,
    original_dst,
    tcp_proxy,
    tls_inspector,
)
from control.plane.xds.translate.telemetry import (
    OFF,
    ChainSecurity,
    Direction,
    Telemetry,
    http_telemetry,
    inbound_route_headers,
    tcp_telemetry,
)

_OUT = Direction.OUTBOUND


def _address(ip: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": ip, "port_value": port}}


def virtual_outbound(
    fallback_cluster: str, telemetry: Telemetry = OFF, port: int = names.OUTBOUND_CAPTURE_PORT
) -> dict[str, Any]:
    return {
        "name": names.VIRTUAL_OUTBOUND,
        "address": _address(names.WILDCARD, port),
        "use_original_dst": True,
        "traffic_direction": "OUTBOUND",
        "filter_chains": [
            {
                # Straight to the capture port (not redirected): would loop.
                "name": "virtualOutbound-blackhole",
                "filter_chain_match": {"destination_port": port},
                "filters": [tcp_proxy("BlackHoleCluster", [(names.BLACKHOLE_CLUSTER, 1)])],
            }
        ],
        "default_filter_chain": {
            "name": "PassthroughFilterChain",
            "filters": [
                tcp_proxy(fallback_cluster, [(fallback_cluster, 1)], tcp_telemetry(telemetry, _OUT))
            ],
        },
    }


def http_outbound(
    port: int, telemetry: Telemetry = OFF, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`options`: the connection manager's path settings (`authz.inbound.path_settings`)."""
    name = names.listener_name(names.WILDCARD, port)
    manager = http_connection_manager(
        f"outbound_{name}",
        rds=names.route_name(port),
        telemetry=http_telemetry(telemetry, _OUT),
        options=options,
    )
    return {
        "name": name,
        "address": _address(names.WILDCARD, port),
        "bind_to_port": False,
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [manager]}],
    }


def tcp_outbound(
    address: str, port: int, clusters: list[tuple[str, int]], telemetry: Telemetry = OFF
) -> dict[str, Any]:
    name = names.listener_name(address, port)
    return {
        "name": name,
        "address": _address(address, port),
        "bind_to_port": False,
        "traffic_direction": "OUTBOUND",
        "filter_chains": [
            {"filters": [tcp_proxy(clusters[0][0], clusters, tcp_telemetry(telemetry, _OUT))]}
        ],
    }


def sni_outbound(
    port: int,
    hosts: list[tuple[str, list[tuple[str, int]]]],
    default: list[tuple[str, int]],
    telemetry: Telemetry = OFF,
) -> dict[str, Any]:
    """TLS to hosts without an address, on a shared port: one chain per server name (SNI)."""
    name = names.listener_name(names.WILDCARD, port)
    logs = tcp_telemetry(telemetry, _OUT)
    return {
        "name": name,
        "address": _address(names.WILDCARD, port),
        "bind_to_port": False,
        "traffic_direction": "OUTBOUND",
        "listener_filters": [tls_inspector()],
        "filter_chains": [
            {
                "name": f"{hostname}_{port}",
                "filter_chain_match": {"server_names": [hostname]},
                "filters": [tcp_proxy(clusters[0][0], clusters, logs)],
            }
            for hostname, clusters in hosts
        ],
        "default_filter_chain": {
            "name": f"{name}-default",
            "filters": [tcp_proxy(default[0][0], default, logs)],
        },
    }


def _inbound_chain(
    port: InboundPort,
    policy: _PolicyParts,
    telemetry: Telemetry,
    security: ChainSecurity = ChainSecurity.PLAINTEXT,
) -> dict[str, Any]:
    """`security`: what this chain knows of its peer (telemetry.ChainSecurity)."""
    cluster = names.inbound_cluster(port.port)
    inbound = Direction.INBOUND
    if port.protocol.is_http:
        route_config = {
            "name": cluster,
            "validate_clusters": False,
            "virtual_hosts": [
                {
                    "name": f"inbound|http|{port.port}",
                    "domains": ["*"],
                    "routes": [
                        {
                            "name": "default",
                            "match": {"prefix": "/"},
                            "route": {"cluster": cluster, "timeout": "0s"},
                        }
                    ],
                }
            ],
            "request_headers_to_remove": inbound_route_headers(),
        }
        stat = f"inbound_0.0.0.0_{port.port}"
        # POLICY HOOK (HTTP): policy filters before the router; path normalisation.
        filters = [
            http_connection_manager(
                stat, route_config=route_config, fault=False,
                telemetry=http_telemetry(telemetry, inbound, security),
                policy_filters=policy.http, options=policy.hcm,
            )
        ]  # fmt: skip
    else:
        # POLICY HOOK (TCP): network RBAC (and CUSTOM ext_authz) before tcp_proxy.
        proxy = tcp_proxy(cluster, [(cluster, 1)], tcp_telemetry(telemetry, inbound, security))
        filters = [*policy.network, proxy]
    return {
        "name": cluster,
        "filter_chain_match": {"destination_port": port.port},
        "filters": filters,
    }


class _PolicyParts:
    """An InboundPolicy's filters, computed once (when needed) for all chains of a listener."""

    def __init__(self, policy: InboundPolicy) -> None:
        self.policy = policy

    @functools.cached_property
    def http(self) -> list[dict[str, Any]]:
        return self.policy.http_filters()

    @functools.cached_property
    def network(self) -> list[dict[str, Any]]:
        return self.policy.network_filters()

    @functools.cached_property
    def hcm(self) -> dict[str, Any]:
        return self.policy.hcm_options()


def virtual_inbound(
    ports: Iterable[InboundPort],
    policy: InboundPolicy = NO_POLICY,
    telemetry: Telemetry = OFF,
    capture_port: int = names.INBOUND_CAPTURE_PORT,
) -> dict[str, Any]:
    """`policy`: the workload's AuthorizationPolicies and RequestAuthentications."""
    parts = _PolicyParts(policy)
    chains = [_inbound_chain(port, parts, telemetry) for port in ports]
    chains.append(
        {
            # Straight to the capture port (not redirected): would loop.
            "name": "virtualInbound-blackhole",
            "filter_chain_match": {"destination_port": capture_port},
            "filters": [tcp_proxy("BlackHoleCluster", [(names.BLACKHOLE_CLUSTER, 1)])],
        }
    )
    passthrough = names.INBOUND_PASSTHROUGH_CLUSTER
    return {
        "name": names.VIRTUAL_INBOUND,
        "address": _address(names.WILDCARD, capture_port),
        "traffic_direction": "INBOUND",
        "listener_filters": [original_dst()],
        "filter_chains": chains,
        "default_filter_chain": {
            "name": "virtualInbound-passthrough",
            "filters": [tcp_proxy(passthrough, [(passthrough, 1)])],
        },
    }
