"""What a proxy tells the control plane about itself: Envoy's `node` in the bootstrap. The keys
and their meaning are the shared contract in `control.config.node_metadata`; Envoy sends the node
once, on the first request of its ADS stream (`set_node_on_first_message_only`)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from control.agent.settings import AgentSettings
from control.config.node_metadata import (
    CLUSTER_ID,
    META_APP_CONTAINERS,
    META_CLUSTER_ID,
    META_INSTANCE_IPS,
    META_INTERCEPTION_MODE,
    META_LABELS,
    META_NAME,
    META_NAMESPACE,
    META_NODE_NAME,
    META_PROXY_PORTS,
    META_SDS,
    META_SERVICE_ACCOUNT,
    META_VERSION,
    META_WORKLOAD_NAME,
    PORT_ADMIN,
    PORT_INBOUND,
    PORT_OUTBOUND,
    PORT_PROMETHEUS,
    PORT_READINESS,
    PORT_STATUS,
)


def mizzen_version() -> str:
    try:
        return metadata.version("mizzen")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def node_metadata(settings: AgentSettings, version: str) -> dict[str, Any]:
    """The metadata Struct, absent keys left out rather than sent empty."""
    options = settings.options
    data: dict[str, Any] = {
        META_NAME: settings.pod_name,
        META_NAMESPACE: settings.namespace,
        META_INSTANCE_IPS: settings.instance_ip,
        META_SERVICE_ACCOUNT: settings.service_account,
        META_LABELS: dict(sorted(settings.labels.items())),
        META_CLUSTER_ID: CLUSTER_ID,
        META_INTERCEPTION_MODE: settings.interception_mode,
        META_VERSION: version,
        META_PROXY_PORTS: {
            PORT_OUTBOUND: options.outbound_port,
            PORT_INBOUND: options.inbound_port,
            PORT_ADMIN: options.admin_port,
            PORT_READINESS: options.readiness_port,
            PORT_STATUS: settings.status_port,
            PORT_PROMETHEUS: options.prometheus_port,
        },
    }
    if settings.identity is not None:
        data[META_SDS] = "true"
    if settings.workload_name:
        data[META_WORKLOAD_NAME] = settings.workload_name
    if settings.node_name:
        data[META_NODE_NAME] = settings.node_name
    if settings.app_containers:
        data[META_APP_CONTAINERS] = ",".join(settings.app_containers)
    return data


def node(settings: AgentSettings, version: str) -> dict[str, Any]:
    return {
        "id": settings.node_id,
        "cluster": settings.service_cluster,
        "metadata": node_metadata(settings, version),
    }
