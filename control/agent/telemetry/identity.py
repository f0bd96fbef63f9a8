"""Who this proxy is, for telemetry (pure, from the agent's settings): the compact identity
Envoy puts in `x-mizzen-peer` (through its environment), the tracer's service name, and the
merger that adds the same identity to the standard series."""

from __future__ import annotations

from control.agent.admin import EnvoyAdmin
from control.agent.settings import AgentSettings
from control.agent.telemetry.merge import AppMetrics, MetricsMerger
from control.agent.telemetry.standard import own_peer
from control.telemetry.peer import OTEL_ENV, PEER_ENV, Peer


def proxy_peer(settings: AgentSettings) -> Peer:
    return own_peer(
        settings.workload_name or settings.pod_name,
        settings.namespace,
        settings.labels,
        settings.service_account,
    )


def envoy_environment(settings: AgentSettings) -> dict[str, str]:
    """`MIZZEN_PEER` (the peer header's value) and the OpenTelemetry resource: Istio names a
    proxy's spans `<canonical service>.<namespace>`."""
    peer = proxy_peer(settings)
    return {
        PEER_ENV: peer.encode(),
        OTEL_ENV: f"service.name={settings.service_cluster}",
    }


def metrics_merger(settings: AgentSettings, admin: EnvoyAdmin) -> MetricsMerger:
    app = AppMetrics.from_annotations(settings.prometheus_annotations)
    if not settings.prometheus_annotations:
        app = None
    return MetricsMerger(admin, proxy_peer(settings), app)
