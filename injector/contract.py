"""The contract between the injector and the containers it injects.

The injector writes these names into pods; `mizzen init` and `mizzen agent` read them. Both sides
import this module, so a rename happens in one place. Everything here is a constant: the values
that vary per pod travel in the proxy container's environment (names below), never in files the
agent would have to find.
"""

# ruff: noqa: S105 (paths and names of a token, not secrets)

from __future__ import annotations

from typing import Final

# --- containers -------------------------------------------------------------------------------
INIT_CONTAINER_NAME: Final = "mizzen-init"
PROXY_CONTAINER_NAME: Final = "mizzen-proxy"
MESH_CONTAINER_NAMES: Final = frozenset({INIT_CONTAINER_NAME, PROXY_CONTAINER_NAME})

# argv of the init container: INIT_COMMAND, then `RedirectSpec.to_args()` as the container's args.
INIT_COMMAND: Final = ("mizzen", "init")
# argv of the proxy container: the agent bootstraps identity, writes Envoy's bootstrap, runs Envoy.
PROXY_COMMAND: Final = ("mizzen", "agent", "run")
# Blocks until the proxy is ready (the postStart hook of holdApplicationUntilProxyStarts).
PROXY_WAIT_COMMAND: Final = ("mizzen", "agent", "wait")

# --- ports ------------------------------------------------------------------------------------
ENVOY_ADMIN_PORT: Final = 15000  # Envoy's admin API, bound to localhost only
OUTBOUND_CAPTURE_PORT: Final = 15001  # iptables REDIRECT target for outbound traffic
INBOUND_CAPTURE_PORT: Final = 15006  # iptables REDIRECT target for inbound traffic
AGENT_STATUS_PORT: Final = 15020  # the agent: /app-health/..., merged /stats/prometheus
READINESS_PORT: Final = 15021  # the proxy's readiness (and the native sidecar's startup probe)
ENVOY_PROMETHEUS_PORT: Final = 15090  # Envoy's /stats/prometheus

READINESS_PATH: Final = "/healthz/ready"
# The agent serves rewritten app probes at /app-health/<container>/<livez|readyz|startupz>.
APP_HEALTH_PREFIX: Final = "/app-health/"
PROBE_PATHS: Final = {
    "livenessProbe": "livez",
    "readinessProbe": "readyz",
    "startupProbe": "startupz",
}


def app_health_path(container: str, probe_field: str) -> str:
    """The agent's path for one rewritten probe, e.g. `/app-health/web/readyz`."""
    return f"{APP_HEALTH_PREFIX}{container}/{PROBE_PATHS[probe_field]}"


# httpGet/tcpSocket lifecycle hooks are run by the agent too (as Istio's pilot-agent does), at
# /app-lifecycle/<container>/<poststartz|prestopz>.
APP_LIFECYCLE_PREFIX: Final = "/app-lifecycle/"
LIFECYCLE_PATHS: Final = {"postStart": "poststartz", "preStop": "prestopz"}


def app_lifecycle_path(container: str, hook: str) -> str:
    """The agent's path for one rewritten lifecycle hook, e.g. `/app-lifecycle/web/prestopz`."""
    return f"{APP_LIFECYCLE_PREFIX}{container}/{LIFECYCLE_PATHS[hook]}"


# --- environment of the proxy container -------------------------------------------------------
# From the downward API.
ENV_POD_NAME: Final = "POD_NAME"
ENV_POD_NAMESPACE: Final = "POD_NAMESPACE"
ENV_INSTANCE_IP: Final = "INSTANCE_IP"
ENV_SERVICE_ACCOUNT: Final = "SERVICE_ACCOUNT"
ENV_NODE_NAME: Final = "NODE_NAME"
# From the mesh's injection settings.
ENV_DISCOVERY_ADDRESS: Final = "MIZZEN_DISCOVERY_ADDRESS"  # host:port of xDS over mutual TLS
# host:port of the CA's CSR API (TLS, token-authenticated); Istio's variable name. Its own port:
# Python gRPC cannot ask for a client certificate without requiring one (see the README).
ENV_CA_ADDRESS: Final = "CA_ADDR"
ENV_TRUST_DOMAIN: Final = "MIZZEN_TRUST_DOMAIN"
ENV_CLUSTER_DOMAIN: Final = "MIZZEN_CLUSTER_DOMAIN"  # e.g. cluster.local (DNS suffix)
ENV_REVISION: Final = "MIZZEN_REVISION"
# From the pod.
ENV_WORKLOAD_NAME: Final = "MIZZEN_WORKLOAD_NAME"  # e.g. the Deployment's name
ENV_LABELS: Final = "MIZZEN_LABELS"  # JSON object: the pod's labels (incl. canonical ones)
ENV_APP_CONTAINERS: Final = "MIZZEN_APP_CONTAINERS"  # comma-separated app container names
ENV_POD_PORTS: Final = "MIZZEN_POD_PORTS"  # JSON list of the app containers' `ports` entries
ENV_INTERCEPTION_MODE: Final = "MIZZEN_INTERCEPTION_MODE"  # REDIRECT or NONE
ENV_STATUS_PORT: Final = "MIZZEN_STATUS_PORT"  # the agent's status port; "0": health disabled
# JSON object {"/app-health/<c>/<kind>": {"httpGet"|"tcpSocket"|"grpc": ..., "timeoutSeconds": n}}:
# the original probes the agent runs on behalf of the kubelet, and the original lifecycle hooks
# under "/app-lifecycle/<c>/<poststartz|prestopz>". Absent when nothing was rewritten.
ENV_APP_PROBES: Final = "MIZZEN_APP_PROBES"
# JSON object {"scrape": ..., "port": ..., "path": ...}: the app's own `prometheus.io/*`
# annotations, kept when the injector points them at the agent's merged metrics (Istio's
# ISTIO_PROMETHEUS_ANNOTATIONS). Absent when the pod had none or merging is off.
ENV_PROMETHEUS_ANNOTATIONS: Final = "MIZZEN_PROMETHEUS_ANNOTATIONS"
# JSON object: the pod's `proxy.istio.io/config` (ProxyConfig, camelCase), "{}" when absent.
ENV_PROXY_CONFIG: Final = "MIZZEN_PROXY_CONFIG"
# Where the projected token and the root certificate are (see the mounts below).
ENV_TOKEN_PATH: Final = "MIZZEN_TOKEN_PATH"
ENV_ROOT_CERT_PATH: Final = "MIZZEN_ROOT_CERT_PATH"
ENV_SDS_SOCKET_PATH: Final = "MIZZEN_SDS_SOCKET_PATH"
ENV_ENVOY_CONFIG_DIR: Final = "MIZZEN_ENVOY_CONFIG_DIR"
# `proxyMetadata` entries of proxy.istio.io/config are also set as env vars of their own name,
# as Istio does.

# --- volumes and mount paths ------------------------------------------------------------------
SDS_VOLUME: Final = "mizzen-sds"  # emptyDir (memory): the agent's SDS unix socket
SDS_DIR: Final = "/var/run/mizzen/sds"
SDS_SOCKET_PATH: Final = f"{SDS_DIR}/socket"
ENVOY_CONFIG_VOLUME: Final = "mizzen-envoy"  # emptyDir: Envoy's bootstrap and scratch files
ENVOY_CONFIG_DIR: Final = "/etc/mizzen/proxy"
TOKEN_VOLUME: Final = "mizzen-token"  # projected service-account token, the mesh's audience
TOKEN_DIR: Final = "/var/run/secrets/tokens"
TOKEN_FILE: Final = "mizzen-token"
TOKEN_PATH: Final = f"{TOKEN_DIR}/{TOKEN_FILE}"
TOKEN_EXPIRATION_SECONDS: Final = 43200
ROOT_CERT_VOLUME: Final = "mizzen-ca-root"  # ConfigMap with the mesh's root certificate
ROOT_CERT_DIR: Final = "/var/run/secrets/mizzen"
ROOT_CERT_KEY: Final = "root-cert.pem"
ROOT_CERT_PATH: Final = f"{ROOT_CERT_DIR}/{ROOT_CERT_KEY}"
MESH_VOLUME_NAMES: Final = frozenset(
    {SDS_VOLUME, ENVOY_CONFIG_VOLUME, TOKEN_VOLUME, ROOT_CERT_VOLUME}
)

# --- metadata written on injected pods --------------------------------------------------------
STATUS_ANNOTATION: Final = "sidecar.mizzen.io/status"
DEFAULT_CONTAINER_ANNOTATION: Final = "kubectl.kubernetes.io/default-container"
CANONICAL_NAME_LABEL: Final = "service.istio.io/canonical-name"
CANONICAL_REVISION_LABEL: Final = "service.istio.io/canonical-revision"
TLS_MODE_LABEL: Final = "security.istio.io/tlsMode"
TLS_MODE_ISTIO: Final = "istio"
