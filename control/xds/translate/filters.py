"""The Envoy filters the listeners are built from (as protobuf-JSON dicts)."""

from __future__ import annotations

from typing import Any

from control.xds.translate.clusters import ADS
from control.xds.translate.http_routes import FAULT_FILTER
from control.xds.translate.telemetry import HttpTelemetry

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
) -> dict[str, Any]:
    """HTTP routing: by RDS route name (outbound) or with an inline route table (inbound).
    `telemetry` (telemetry.http_telemetry, a hook point): access loggers, filters that run
    before the others, tracing."""
    http_filters: list[dict[str, Any]] = list(telemetry.filters) if telemetry else []
    if fault:
        http_filters.append(
            {
                "name": FAULT_FILTER,
                "typed_config": {"@type": _T + "envoy.extensions.filters.http.fault.v3.HTTPFault"},
            }
        )
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
        config["access_log"] = telemetry.access_log
    if telemetry and telemetry.tracing:
        config["tracing"] = telemetry.tracing
    if rds is not None:
        config["rds"] = {"config_source": ADS, "route_config_name": rds}
    else:
        config["route_config"] = route_config
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}
