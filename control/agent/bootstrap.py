"""Envoy's bootstrap, as a pure function of the agent's settings.

Everything the proxy routes comes over one ADS stream from the control plane; the bootstrap only
says who the proxy is (`node`), where the control plane is (the `xds-grpc` cluster), and adds
what must exist before any xDS arrives: the admin API on localhost and the Prometheus listener.
`initial_fetch_timeout: 0s` makes Envoy wait for its first listeners and clusters rather than
go LIVE empty, so "LIVE" really means "configured" (the readiness check relies on it).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

import yaml

from control.agent.bootstrap_identity import sds_cluster, xds_transport_socket
from control.agent.node import node
from control.agent.settings import AgentSettings

XDS_CLUSTER: Final = "xds-grpc"
PROMETHEUS_CLUSTER: Final = "prometheus_stats"
PROMETHEUS_LISTENER: Final = "prometheus"
PROMETHEUS_PATH: Final = "/stats/prometheus"
_UNLIMITED: Final = 4294967295  # Istio's "effectively unlimited" circuit-breaker thresholds
_HTTP_PROTOCOL_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TYPE: Final = "type.googleapis.com/"


def _socket_address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _any_address(pod_ip: str, port: int) -> dict[str, Any]:
    """All addresses of the pod's family; an IPv6 pod's `::` accepts IPv4 as well."""
    if ipaddress.ip_address(pod_ip).version == 4:
        return _socket_address("0.0.0.0", port)
    return {"socket_address": {"address": "::", "port_value": port, "ipv4_compat": True}}


def _load_assignment(cluster: str, host: str, port: int) -> dict[str, Any]:
    return {
        "cluster_name": cluster,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}],
    }


def _xds_cluster(settings: AgentSettings) -> dict[str, Any]:
    address = settings.discovery_address
    thresholds = {
        "max_connections": _UNLIMITED,
        "max_pending_requests": _UNLIMITED,
        "max_requests": _UNLIMITED,
    }
    return {
        "name": XDS_CLUSTER,
        "type": "STATIC" if address.is_ip else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": _load_assignment(XDS_CLUSTER, address.host, address.port),
        "circuit_breakers": {
            "thresholds": [
                {"priority": "DEFAULT", **thresholds},
                {"priority": "HIGH", **thresholds},
            ]
        },
        # A dead control plane must be noticed (and reconnected to) even on an idle stream.
        "upstream_connection_options": {"tcp_keepalive": {"keepalive_time": 300}},
        "typed_extension_protocol_options": {
            _HTTP_PROTOCOL_OPTIONS: {
                "@type": _TYPE + _HTTP_PROTOCOL_OPTIONS,
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "connection_keepalive": {"interval": "30s", "timeout": "10s"}
                    }
                },
            }
        },
    }


def _prometheus_cluster(settings: AgentSettings) -> dict[str, Any]:
    return {
        "name": PROMETHEUS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "0.250s",
        "load_assignment": _load_assignment(
            PROMETHEUS_CLUSTER, "127.0.0.1", settings.options.admin_port
        ),
    }


def _prometheus_listener(settings: AgentSettings) -> dict[str, Any]:
    """Exposes only the admin's /stats/prometheus on all addresses; the rest of the admin API
    stays on localhost."""
    hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    router = "envoy.extensions.filters.http.router.v3.Router"
    route = {"match": {"prefix": PROMETHEUS_PATH}, "route": {"cluster": PROMETHEUS_CLUSTER}}
    return {
        "name": PROMETHEUS_LISTENER,
        "address": _any_address(settings.instance_ip, settings.options.prometheus_port),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": _TYPE + hcm,
                            "stat_prefix": "stats",
                            "codec_type": "AUTO",
                            "route_config": {
                                "virtual_hosts": [
                                    {"name": "backend", "domains": ["*"], "routes": [route]}
                                ]
                            },
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.router",
                                    "typed_config": {"@type": _TYPE + router},
                                }
                            ],
                        },
                    }
                ]
            }
        ],
    }


# Runtime keys, as Istio's bootstrap sets them: RE2 programs up to 32768 (Envoy's default error
# level is 100, which a policy's escaped service-account regex over long names already exceeds,
# and an exceeded level makes Envoy reject the whole listener).
RUNTIME: Final = {"re2.max_program_size.error_level": 32768}


def _ads_source() -> dict[str, Any]:
    return {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}


def render_bootstrap(settings: AgentSettings, version: str) -> dict[str, Any]:
    """The bootstrap as a plain dict (YAML/JSON-ready); `version` goes into the node metadata."""
    clusters = [_xds_cluster(settings)]
    if settings.identity is not None:  # the agent's SDS; xDS over mutual TLS unless told not to
        clusters.append(sds_cluster(settings.identity))
        if settings.identity.xds_tls:
            clusters[0]["transport_socket"] = xds_transport_socket(settings.identity)
    listeners = []
    if settings.options.prometheus_port:
        clusters.append(_prometheus_cluster(settings))
        listeners.append(_prometheus_listener(settings))
    monitor = "envoy.extensions.resource_monitors.downstream_connections.v3"
    return {
        "node": node(settings, version),
        "admin": {"address": _socket_address("127.0.0.1", settings.options.admin_port)},
        "dynamic_resources": {
            "ads_config": {
                "api_type": settings.options.xds_api,
                "transport_api_version": "V3",
                "set_node_on_first_message_only": True,
                "grpc_services": [{"envoy_grpc": {"cluster_name": XDS_CLUSTER}}],
            },
            "cds_config": _ads_source(),
            "lds_config": _ads_source(),
        },
        "static_resources": {"clusters": clusters, "listeners": listeners},
        # The hardening guide: a ceiling on downstream connections, so a flood cannot exhaust
        # file descriptors and take the admin API down with it.
        "layered_runtime": {"layers": [{"name": "static", "static_layer": dict(RUNTIME)}]},
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": f"{_TYPE}{monitor}.DownstreamConnectionsConfig",
                        "max_active_downstream_connections": 100000,
                    },
                }
            ]
        },
    }


def bootstrap_yaml(settings: AgentSettings, version: str) -> str:
    return yaml.safe_dump(render_bootstrap(settings, version), sort_keys=False)
