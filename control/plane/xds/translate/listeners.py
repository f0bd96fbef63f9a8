"""Listeners (LDS) for one proxy, laid out as Istio's sidecars are:

- `virtualOutbound` binds 15001 (the outbound redirect's target) and, with `use_original_dst`,
  hands each connection to the listener of its original destination: `0.0.0.0_<port>` for HTTP
  ports (routed by Host through RDS route `<port>`), `<vip>_<port>` for TCP ports. Connections to
  anything else pass through (ALLOW_ANY) or hit the black hole (REGISTRY_ONLY).
- `virtualInbound` binds 15006 (the inbound redirect's target) with filter chains per port of
  the proxy's own workload, matched on the original destination port and, per the port's
  PeerAuthentication mode, on TLS and ALPN (`_inbound_chains`).

A proxy whose agent reports other capture ports (`PROXY_PORTS`) gets its listeners there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Final

from control.plane.xds.translate import names
from control.plane.xds.translate.authz.inbound import NO_POLICY, InboundPolicy
from control.plane.xds.translate.clusters import InboundPort
from control.plane.xds.translate.filters import (
    http_connection_manager,
    original_dst,
    tcp_proxy,
    tls_inspector,
)
from control.plane.xds.translate.peer_authn import MtlsMode, PeerMtls
from control.plane.xds.translate.telemetry import (
    OFF,
    ChainSecurity,
    Direction,
    Telemetry,
    http_telemetry,
    inbound_route_headers,
    tcp_telemetry,
)
from control.plane.xds.translate.tls_sockets import MESH_ALPN, inbound_mtls

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


def _inbound_filters(
    port: InboundPort, policy: _PolicyParts, telemetry: Telemetry, security: ChainSecurity
) -> list[dict[str, Any]]:
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
        return [
            http_connection_manager(
                stat, route_config=route_config, fault=False,
                telemetry=http_telemetry(telemetry, inbound, security),
                policy_filters=policy.http, options={**policy.hcm, **_XFCC},
            )
        ]  # fmt: skip
    # POLICY HOOK (TCP): network RBAC (and CUSTOM ext_authz) before tcp_proxy.
    proxy = tcp_proxy(cluster, [(cluster, 1)], tcp_telemetry(telemetry, inbound, security))
    return [*policy.network, proxy]


# Istio's inbound XFCC: the client's certificate (By = this sidecar's SPIFFE id, Hash, Subject,
# URI = the client's SPIFFE id) appended for the app; on a connection without a client
# certificate Envoy removes the header, so a forged one never reaches the app. Istio also asks
# for `dns`; a client certificate here chains to the mesh roots, and the mesh CA signs no DNS
# name into a workload's certificate (`ca/signer.py` refuses any SAN but the caller's SPIFFE
# id), so the header is the same without it, and Envoy no longer looks for DNS names on every
# request (~5,600 instructions of the server's ~98,000; `hack/bench/bench_mtls.py`).
_XFCC: Final = {
    "forward_client_cert_details": "APPEND_FORWARD",
    "set_current_client_cert_details": {"subject": True, "uri": True},
}


def _inbound_chains(
    port: InboundPort, policy: _PolicyParts, telemetry: Telemetry, mode: MtlsMode | None
) -> list[dict[str, Any]]:
    """The chains of one port. `mode` None: the proxy has no workload certificate (plaintext,
    as before mTLS). STRICT: TLS with a mesh client certificate or nothing; PERMISSIVE: mesh
    mTLS (TLS with an Istio ALPN), TLS of the app's own (passed through untouched), plaintext;
    DISABLE: plaintext."""
    cluster = names.inbound_cluster(port.port)
    by_port = {"destination_port": port.port}
    http = port.protocol.is_http
    if mode is None or mode is MtlsMode.DISABLE:
        security = ChainSecurity.PLAINTEXT
        filters = _inbound_filters(port, policy, telemetry, security)
        return [{"name": cluster, "filter_chain_match": by_port, "filters": filters}]
    mtls = {
        "filter_chain_match": by_port,
        "filters": _inbound_filters(port, policy, telemetry, ChainSecurity.MUTUAL_TLS),
        "transport_socket": inbound_mtls(http),
    }
    if mode is MtlsMode.STRICT:
        return [{"name": cluster, **mtls}]
    mesh_tls = {**by_port, "transport_protocol": "tls", "application_protocols": list(MESH_ALPN)}
    beside = ChainSecurity.PLAINTEXT_BESIDE_MTLS
    logs = tcp_telemetry(telemetry, Direction.INBOUND, beside)
    passthrough = tcp_proxy(cluster, [(cluster, 1)], logs)
    return [
        {**mtls, "name": f"{cluster}-mtls", "filter_chain_match": mesh_tls},
        {
            "name": f"{cluster}-tls",
            "filter_chain_match": {**by_port, "transport_protocol": "tls"},
            "filters": [*policy.network, passthrough],
        },
        {
            "name": cluster,
            "filter_chain_match": {**by_port, "transport_protocol": "raw_buffer"},
            "filters": _inbound_filters(port, policy, telemetry, beside),
        },
    ]


class _PolicyParts:
    """An InboundPolicy's filters, computed once (when needed) for all chains of a listener."""

    def __init__(self, policy: InboundPolicy) -> None:
        self.policy = policy

    @functools.cached_property
    def http(self) -> list[dict[str, Any]]:
        return self.policy.http_filters(packed=True)

    @functools.cached_property
    def network(self) -> list[dict[str, Any]]:
        return self.policy.network_filters(packed=True)

    @functools.cached_property
    def hcm(self) -> dict[str, Any]:
        return self.policy.hcm_options()


def virtual_inbound(
    ports: Iterable[InboundPort],
    policy: InboundPolicy = NO_POLICY,
    telemetry: Telemetry = OFF,
    peer: PeerMtls | None = None,
    capture_port: int = names.INBOUND_CAPTURE_PORT,
) -> dict[str, Any]:
    """`policy`: the workload's AuthorizationPolicies and RequestAuthentications; `peer`: its
    PeerAuthentication modes (None: the proxy has no workload certificate, all plaintext)."""
    parts = _PolicyParts(policy)
    chains = [
        chain
        for port in ports
        for chain in _inbound_chains(
            port, parts, telemetry, peer.for_port(port.port) if peer else None
        )
    ]
    chains.append(
        {
            # Straight to the capture port (not redirected): would loop.
            "name": "virtualInbound-blackhole",
            "filter_chain_match": {"destination_port": capture_port},
            "filters": [tcp_proxy("BlackHoleCluster", [(names.BLACKHOLE_CLUSTER, 1)])],
        }
    )
    passthrough = names.INBOUND_PASSTHROUGH_CLUSTER
    default: dict[str, Any] = {
        "name": "virtualInbound-passthrough",
        "filters": [tcp_proxy(passthrough, [(passthrough, 1)])],
    }
    listener_filters = [original_dst()]
    if peer is not None:
        listener_filters.append(tls_inspector())
        if peer.mode is MtlsMode.STRICT:  # ports no Service declares: the workload's mode
            default["transport_socket"] = inbound_mtls(http=False)
    return {
        "name": names.VIRTUAL_INBOUND,
        "address": _address(names.WILDCARD, capture_port),
        "traffic_direction": "INBOUND",
        "listener_filters": listener_filters,
        "filter_chains": chains,
        "default_filter_chain": default,
    }
