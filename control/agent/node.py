"""What a proxy tells the control plane about itself: Envoy's `node` in the bootstrap.

Envoy sends the node once, on the first request of its ADS stream
(`set_node_on_first_message_only`). The control plane reads:

- `node.id`: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<cluster domain>` (Istio's form);
- `node.cluster`: `<canonical name>.<namespace>`;
- `node.metadata` (a Struct), with Istio's keys so Istio-aware tools understand them:

  | key               | type             | what                                            |
  |-------------------|------------------|-------------------------------------------------|
  | `NAME`            | string           | the pod's name                                  |
  | `NAMESPACE`       | string           | the pod's namespace                             |
  | `INSTANCE_IPS`    | string           | the pod's IPs, comma-separated                  |
  | `SERVICE_ACCOUNT` | string           | the pod's service account                       |
  | `LABELS`          | object of string | the pod's labels                                |
  | `WORKLOAD_NAME`   | string           | the workload (e.g. Deployment) name, or absent  |
  | `NODE_NAME`       | string           | the Kubernetes node, or absent                  |
  | `CLUSTER_ID`      | string           | always `Kubernetes` for now                     |
  | `INTERCEPTION_MODE` | string         | `REDIRECT`, `TPROXY` or `NONE`                  |
  | `APP_CONTAINERS`  | string           | app container names, comma-separated, or absent |
  | `MIZZEN_VERSION`  | string           | the agent's version                             |
  | `PROXY_PORTS`     | object of number | the proxy's own ports (outbound, inbound, ...)  |
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Final

from control.agent.settings import AgentSettings

META_NAME: Final = "NAME"
META_NAMESPACE: Final = "NAMESPACE"
META_INSTANCE_IPS: Final = "INSTANCE_IPS"
META_SERVICE_ACCOUNT: Final = "SERVICE_ACCOUNT"
META_LABELS: Final = "LABELS"
META_WORKLOAD_NAME: Final = "WORKLOAD_NAME"
META_NODE_NAME: Final = "NODE_NAME"
META_CLUSTER_ID: Final = "CLUSTER_ID"
META_INTERCEPTION_MODE: Final = "INTERCEPTION_MODE"
META_APP_CONTAINERS: Final = "APP_CONTAINERS"
META_VERSION: Final = "MIZZEN_VERSION"
META_PROXY_PORTS: Final = "PROXY_PORTS"
CLUSTER_ID: Final = "Kubernetes"


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
            "outbound": options.outbound_port,
            "inbound": options.inbound_port,
            "admin": options.admin_port,
            "readiness": options.readiness_port,
            "status": settings.status_port,
            "prometheus": options.prometheus_port,
        },
    }
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
