"""The Envoy filters the listeners are built from (as protobuf-JSON dicts)."""

from __future__ import annotations

from typing import Any

from control.plane.xds.translate.clusters import ADS
from control.plane.xds.translate.http_routes import FAULT_FILTER
from control.plane.xds.translate.telemetry import HttpTelemetry

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


def tcp_proxy(
    stat_prefix: str,
    clusters: list[tuple[str, int]],
    telemetry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """To one cluster, or split by weight among several. `telemetry`: access-log fields
    (telemetry.tcp_telemetry, a hook point)."""
    config: dict[str, Any] = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix}
    config.update(telemetry or {})
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
    telemetry: HttpTelemetry | None = None,
    policy_filters: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HTTP routing: by RDS route name (outbound) or with an inline route table (inbound).
    Hook points: `telemetry` (`telemetry.http_telemetry`: access loggers, filters that run before
    the others, tracing); `policy_filters` go just before the router, and `options` (path
    normalisation, ...) are set on the connection manager (both from `translate.authz`)."""
    http_filters: list[dict[str, Any]] = list(telemetry.filters) if telemetry else []
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
    if telemetry and telemetry.access_log:
        config["access_log"] = list(telemetry.access_log)
    if telemetry and telemetry.tracing:
        config["tracing"] = telemetry.tracing
    for key, value in (options or {}).items():
        if key == "access_log":  # several parts add access loggers: append, never replace
            config.setdefault("access_log", []).extend(value)
        else:
            config[key] = value
    if rds is not None:
        config["rds"] = {"config_source": ADS, "route_config_name": rds}
    else:
        config["route_config"] = route_config
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}
