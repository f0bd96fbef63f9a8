"""The contract between the proxy's agent and the control plane: what a proxy says about itself
in Envoy's `node` (the agent writes it into the bootstrap, the control plane reads it from the
first request of an ADS stream). Both sides import these names, so they cannot drift apart.

- `node.id`: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<cluster domain>` (Istio's form);
- `node.cluster`: `<canonical name>.<namespace>`;
- `node.metadata` (a Struct), with Istio's keys so Istio-aware tools understand them:

  | key                 | type             | what                                            |
  |---------------------|------------------|-------------------------------------------------|
  | `NAME`              | string           | the pod's name                                  |
  | `NAMESPACE`         | string           | the pod's namespace                             |
  | `INSTANCE_IPS`      | string           | the pod's IPs, comma-separated                  |
  | `SERVICE_ACCOUNT`   | string           | the pod's service account                       |
  | `LABELS`            | object of string | the pod's labels                                |
  | `WORKLOAD_NAME`     | string           | the workload (e.g. Deployment) name, or absent  |
  | `NODE_NAME`         | string           | the Kubernetes node, or absent                  |
  | `CLUSTER_ID`        | string           | always `Kubernetes` for now                     |
  | `INTERCEPTION_MODE` | string           | `REDIRECT`, `TPROXY` or `NONE`                  |
  | `APP_CONTAINERS`    | string           | app container names, comma-separated, or absent |
  | `MIZZEN_VERSION`    | string           | the agent's version                             |
  | `PROXY_PORTS`       | object of number | the proxy's own ports (`PORT_*` keys below)     |
  | `SDS`               | string           | `true` when the agent serves a workload cert    |

The control plane reads `NAME`, `NAMESPACE`, `LABELS` and `SERVICE_ACCOUNT` (the Pod in its
config wins over them when it knows the pod) and `SDS` (a proxy without a workload certificate
gets no mTLS: it could not complete a handshake); the rest is for tools and later features.
"""

from __future__ import annotations

from typing import Final

NODE_TYPE: Final = "sidecar"  # the first field of the node id

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
META_SDS: Final = "SDS"
CLUSTER_ID: Final = "Kubernetes"

# Keys of `PROXY_PORTS`.
PORT_OUTBOUND: Final = "outbound"
PORT_INBOUND: Final = "inbound"
PORT_ADMIN: Final = "admin"
PORT_READINESS: Final = "readiness"
PORT_STATUS: Final = "status"
PORT_PROMETHEUS: Final = "prometheus"
