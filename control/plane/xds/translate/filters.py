"""The Envoy filters the listeners are built from (as protobuf-JSON dicts)."""

from __future__ import annotations

from typing import Any

from control.plane.xds.translate.clusters import ADS
from control.plane.xds.translate.http_routes import FAULT_FILTER

_T = "type.googleapis.com/"
HCM_TYPE = _T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_TYPE = _T + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def original_dst() -> dict[str, Any]:
    return {
        "name": "envoy.filters.listener.original_dst",
        "typed_config": {
            "@type": _T + "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
        },
    }


def tls_inspector() -> dict[str, Any]:
    """Reads the ClientHello's SNI so filter chains can match `server_names`."""
    return {
        "name": "envoy.filters.listener.tls_inspector",
        "typed_config": {
            "@type": _T + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
        },
    }


def tcp_proxy(stat_prefix: str, clusters: list[tuple[str, int]]) -> dict[str, Any]:
    """To one cluster, or split by weight among several."""
    config: dict[str, Any] = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix}
    if len(clusters) == 1:
        config["cluster"] = clusters[0][0]
    else:
        config["weighted_clusters"] = {
            "clusters": [{"name": name, "weight": weight} for name, weight in clusters]
        }
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def http_connection_manager(
    stat_prefix: str,
    *,
    rds: str | None = None,
    route_config: dict[str, Any] | None = None,
    fault: bool = True,
    policy_filters: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HTTP routing: by RDS route name (outbound) or with an inline route table (inbound).
    `policy_filters` go just before the router; `options` (path normalisation, ...) are set on
    the connection manager (both from `control.plane.xds.translate.authz`)."""
    http_filters: list[dict[str, Any]] = []
    if fault:
        http_filters.append(
            {
                "name": FAULT_FILTER,
                "typed_config": {"@type": _T + "envoy.extensions.filters.http.fault.v3.HTTPFault"},
            }
        )
    http_filters += policy_filters or []
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": _T + "envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    config: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "http_filters": http_filters,
        "use_remote_address": False,
        "normalize_path": True,
    }
    for key, value in (options or {}).items():
        if key == "access_log":  # several parts may add access loggers: append, never replace
            config.setdefault("access_log", []).extend(value)
        else:
            config[key] = value
    if rds is not None:
        config["rds"] = {"config_source": ADS, "route_config_name": rds}
    else:
        config["route_config"] = route_config
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}
