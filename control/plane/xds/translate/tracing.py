"""Tracing (MeshConfig `extensionProviders` of type `opentelemetry`, `defaultProviders.tracing`
or `enableTracing`, `defaultConfig.tracing.sampling`): Envoy's OpenTelemetry tracer in every
HTTP connection manager, exporting over OTLP/gRPC to a cluster of its own. The spans' service
name comes from Envoy's environment (`OTEL_RESOURCE_ATTRIBUTES`, set by the agent), so the
translation stays the same for every proxy."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Final

from control.config.mesh_config import MeshConfig

_T: Final = "type.googleapis.com/"
_OTEL_TYPE: Final = _T + "envoy.config.trace.v3.OpenTelemetryConfig"
_DETECTOR: Final = "envoy.tracers.opentelemetry.resource_detectors.environment"
_DETECTOR_TYPE: Final = (
    _T + "envoy.extensions.tracers.opentelemetry.resource_detectors.v3."
    "EnvironmentResourceDetectorConfig"
)
_HTTP_OPTIONS: Final = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TRACING_CLUSTER_PREFIX: Final = "opentelemetry"


@dataclass(frozen=True, slots=True)
class Tracer:
    cluster: str
    address: str
    port: int
    sampling: float
    max_tag_length: int


def tracer_of(mesh: MeshConfig) -> Tracer | None:
    provider = mesh.tracing_provider()
    if provider is None:
        return None
    return Tracer(
        cluster=f"{TRACING_CLUSTER_PREFIX}|{provider.port}|{provider.service}",
        address=provider.service,
        port=provider.port,
        sampling=mesh.default_config.tracing.sampling,
        max_tag_length=provider.max_tag_length,
    )


def tracing(tracer: Tracer, *, outbound: bool) -> dict[str, Any]:
    """The HTTP connection manager's `tracing` block."""
    return {
        "random_sampling": {"value": tracer.sampling},
        "max_path_tag_length": tracer.max_tag_length,
        "spawn_upstream_span": outbound,
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": _OTEL_TYPE,
                "grpc_service": {"envoy_grpc": {"cluster_name": tracer.cluster}},
                "resource_detectors": [
                    {"name": _DETECTOR, "typed_config": {"@type": _DETECTOR_TYPE}}
                ],
            },
        },
    }


def extra_clusters(tracer: Tracer | None) -> list[dict[str, Any]]:
    """The collector's cluster (HTTP/2 for OTLP gRPC): part of every proxy's inbound half, so
    inbound and outbound listeners can both name it."""
    if tracer is None:
        return []
    try:
        ipaddress.ip_address(tracer.address)
        kind = "STATIC"
    except ValueError:
        kind = "STRICT_DNS"
    endpoint = {"address": {"socket_address": {"address": tracer.address,
                                               "port_value": tracer.port}}}  # fmt: skip
    return [
        {
            "name": tracer.cluster,
            "type": kind,
            "connect_timeout": "1s",
            "dns_lookup_family": "V4_ONLY",
            "load_assignment": {
                "cluster_name": tracer.cluster,
                "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
            },
            "typed_extension_protocol_options": {
                _HTTP_OPTIONS: {
                    "@type": _T + _HTTP_OPTIONS,
                    "explicit_http_config": {"http2_protocol_options": {}},
                }
            },
        }
    ]
