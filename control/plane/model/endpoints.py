"""Endpoints derived from Service selectors, as Kubernetes' endpoints controller derives them:
pods of the Service's namespace whose labels include the selector, with an IP, ready, not
terminating; a named targetPort resolves per pod (a pod without that port is left out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from control.plane.model.kube_objects import Service, Workload


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One ready address of one service port; labels are the pod's, for subsets."""

    ip: str
    port: int
    labels: Mapping[str, str]
    pod: str
    namespace: str
    service_account: str
    workload: str = ""  # the pod's workload name (telemetry)


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Equality-based selection: every selector pair is among the labels."""
    return all(labels.get(key) == value for key, value in selector.items())


def service_endpoints(
    service: Service, workloads: Iterable[Workload]
) -> dict[int, tuple[Endpoint, ...]]:
    """Service port number -> its ready endpoints, sorted by address. No selector, no endpoints
    here: such a Service's endpoints come from its EndpointSlices (`endpoint_slices`)."""
    result: dict[int, list[Endpoint]] = {port.port: [] for port in service.ports}
    if not service.selector:
        return dict.fromkeys(result, ())
    for pod in workloads:
        if pod.namespace != service.namespace or not pod.ready or pod.ip is None:
            continue
        if not labels_match(service.selector, pod.labels):
            continue
        for port in service.ports:
            target = port.resolved_target()
            number = target if isinstance(target, int) else pod.named_port(target, port.protocol)
            if number is None:
                continue
            result[port.port].append(
                Endpoint(
                    pod.ip,
                    number,
                    pod.labels,
                    pod.name,
                    pod.namespace,
                    pod.service_account,
                    pod.workload_name,
                )
            )
    return {port: tuple(sorted(eps, key=endpoint_order)) for port, eps in result.items()}


def endpoint_order(endpoint: Endpoint) -> tuple[tuple[int, ...] | str, int]:
    parts = endpoint.ip.split(".")
    key: tuple[int, ...] | str = (
        tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else endpoint.ip
    )
    return (key, endpoint.port)
