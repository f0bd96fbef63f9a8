"""The sample mesh's configuration: what a user would keep in the control plane's directory.

Namespace `demo`; Service `echo` (a cluster IP, port 80 named `http`, target 8080) backed by the
pods `echo-v1` and `echo-v2`; the pod `client` whose proxy asks the control plane how to route;
and the routing: a DestinationRule with subsets v1/v2 and a VirtualService that pins requests
carrying `x-mizzen-pin: v2` to v2, aborts requests under `/fault` with a status, and splits the
rest by weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

NAMESPACE: Final = "demo"
SERVICE: Final = "echo"
SERVICE_HOST: Final = f"{SERVICE}.{NAMESPACE}.svc.cluster.local"
# Service VIPs live in 198.19.255.0/24: inside the test ranges, never a pod subnet (see netns).
SERVICE_IP: Final = "198.19.255.20"
SERVICE_PORT: Final = 80
BACKEND_PORT: Final = 8080
PIN_HEADER: Final = "x-mizzen-pin"
FAULT_PREFIX: Final = "/fault"
WORKLOADS_FILE: Final = "workloads.yaml"
ROUTING_FILE: Final = "routing.yaml"


@dataclass(frozen=True)
class Routing:
    """The knobs the demo and the tests turn."""

    v1_weight: int = 80
    v2_weight: int = 20
    fault_status: int = 418

    def documents(self) -> list[dict[str, Any]]:
        destination_rule = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "host": SERVICE_HOST,
                "subsets": [{"name": v, "labels": {"version": v}} for v in ("v1", "v2")],
            },
        }
        split = [
            {"destination": {"host": SERVICE_HOST, "subset": subset}, "weight": weight}
            for subset, weight in (("v1", self.v1_weight), ("v2", self.v2_weight))
            if weight
        ]
        virtual_service = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "hosts": [SERVICE_HOST],
                "http": [
                    {
                        "name": "pin-v2",
                        "match": [{"headers": {PIN_HEADER: {"exact": "v2"}}}],
                        "route": [{"destination": {"host": SERVICE_HOST, "subset": "v2"}}],
                    },
                    {
                        "name": "fault",
                        "match": [{"uri": {"prefix": FAULT_PREFIX}}],
                        "fault": {
                            "abort": {
                                "httpStatus": self.fault_status,
                                "percentage": {"value": 100},
                            }
                        },
                        "route": [{"destination": {"host": SERVICE_HOST, "subset": "v1"}}],
                    },
                    {"name": "split", "route": split},
                ],
            },
        }
        return [destination_rule, virtual_service]


def _pod(name: str, ip: str, labels: Mapping[str, str], account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": dict(labels)},
        "spec": {
            "serviceAccountName": account,
            "containers": [
                {
                    "name": "app",
                    "image": "example/app",
                    "ports": [{"name": "http", "containerPort": BACKEND_PORT}],
                }
            ],
        },
        "status": {"phase": "Running", "podIP": ip},
    }


def workload_documents(client_ip: str, v1_ip: str, v2_ip: str) -> list[dict[str, Any]]:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"istio-injection": "enabled"}},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {
            "clusterIP": SERVICE_IP,
            "selector": {"app": SERVICE},
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": BACKEND_PORT}],
        },
    }
    return [
        namespace,
        service,
        _pod("client", client_ip, CLIENT_LABELS, "client"),
        _pod("echo-v1", v1_ip, echo_labels("v1"), SERVICE),
        _pod("echo-v2", v2_ip, echo_labels("v2", meshed=True), SERVICE),
    ]


# The label the injector puts on every pod it injects: auto-mTLS sends mTLS only to such pods.
MESHED: Final = {"security.istio.io/tlsMode": "istio"}
CLIENT_LABELS: Final = {"app": "client", "version": "v1", **MESHED}


def echo_labels(version: str, *, meshed: bool = False) -> dict[str, str]:
    """An echo pod's labels; `meshed` for one with a sidecar (as injected)."""
    return {"app": SERVICE, "version": version, **(MESHED if meshed else {})}


def write_documents(path: Path, documents: Sequence[Mapping[str, Any]]) -> None:
    """Atomically: a hidden temp file in the same directory (the file source skips dot-names),
    then a rename, so the control plane never reads half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False))
    temporary.replace(path)


def write_config(directory: Path, client_ip: str, v1_ip: str, v2_ip: str, routing: Routing) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_documents(directory / WORKLOADS_FILE, workload_documents(client_ip, v1_ip, v2_ip))
    write_documents(directory / ROUTING_FILE, routing.documents())
