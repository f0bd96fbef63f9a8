"""The bootstrap's identity parts (pure): the `sds-grpc` cluster to the agent's unix socket, and
mutual TLS on the `xds-grpc` cluster with the SDS-fed workload certificate.

Envoy connects to the control plane directly (not through the agent, as Istio's agent proxies
xDS): one hop less, no Python in the config path, and Envoy's SDS already swaps certificates
for new connections without touching open ones. The control plane's certificate must chain to
`ROOTCA` and name the discovery address' host (a DNS SAN, or an IP SAN for an address).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final

from control.agent.identity_settings import IdentitySettings
from control.agent.secrets import ROOTS, WORKLOAD
from control.config.sds_names import SDS_CLUSTER, sds_config

_TYPE: Final = "type.googleapis.com/"
_HTTP_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_UPSTREAM_TLS: Final = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def sds_cluster(identity: IdentitySettings) -> dict[str, Any]:
    return {
        "name": SDS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": SDS_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"pipe": {"path": str(identity.sds_socket_path)}}}}
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            _HTTP_OPTIONS: {
                "@type": _TYPE + _HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
    }


def _san_matcher(host: str) -> dict[str, Any]:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return {"san_type": "DNS", "matcher": {"exact": host}}
    return {"san_type": "IP_ADDRESS", "matcher": {"exact": host}}


def xds_transport_socket(identity: IdentitySettings) -> dict[str, Any]:
    host = identity.discovery_host
    context: dict[str, Any] = {
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_2"},
            "tls_certificate_sds_secret_configs": [{"name": WORKLOAD, "sds_config": sds_config()}],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [_san_matcher(host)]
                },
                "validation_context_sds_secret_config": {"name": ROOTS, "sds_config": sds_config()},
            },
        }
    }
    try:
        ipaddress.ip_address(host)
    except ValueError:
        context["sni"] = host
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {"@type": _TYPE + _UPSTREAM_TLS, **context},
    }
