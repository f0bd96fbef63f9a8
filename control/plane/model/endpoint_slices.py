"""Endpoints of Services without a selector, from their EndpointSlices (`discovery.k8s.io/v1`).

A Service without a selector has its endpoints managed by someone else: an operator, a
controller for an external database, a hand-written slice. Kubernetes records them in
EndpointSlices labelled `kubernetes.io/service-name`; the mesh reads them as kube-proxy does:
a slice port by the Service port's name, an endpoint ready unless its `ready` condition says
false and not terminating, IPv4/IPv6 slices only (FQDN slices are deprecated and skipped). An
endpoint pointing at a known pod (`targetRef`) carries that pod's labels and service account, so
subsets, telemetry and mTLS treat it as the pod it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from control.plane.model.endpoints import Endpoint, endpoint_order
from control.plane.model.kube_objects import (
    ObjectError,
    Service,
    Workload,
    mapping_field,
    object_metadata,
    port_number,
    string_field,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")


@dataclass(frozen=True, slots=True)
class SlicePort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class SliceEndpoint:
    addresses: tuple[str, ...]
    ready: bool
    pod: str | None  # targetRef of kind Pod: its name (same namespace as the slice)


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    name: str
    namespace: str
    service: str | None  # the `kubernetes.io/service-name` label
    address_type: str
    ports: tuple[SlicePort, ...]
    endpoints: tuple[SliceEndpoint, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def parse_endpoint_slice(obj: Mapping[str, Any]) -> EndpointSlice:
    name, namespace, labels = object_metadata(obj)
    address_type = string_field(obj.get("addressType"), "addressType", required=True)
    if address_type not in _ADDRESS_TYPES:
        raise ObjectError("addressType", f"must be one of {', '.join(_ADDRESS_TYPES)}")
    return EndpointSlice(
        name=name,
        namespace=namespace,
        service=labels.get(SERVICE_NAME_LABEL),
        address_type=str(address_type),
        ports=tuple(
            _port(p, f"ports[{i}]") for i, p in enumerate(_list(obj.get("ports"), "ports"))
        ),
        endpoints=tuple(
            _endpoint(e, f"endpoints[{i}]")
            for i, e in enumerate(_list(obj.get("endpoints"), "endpoints"))
        ),
    )


def _list(value: object, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ObjectError(path, "must be a list")
    return value


def _port(value: object, path: str) -> SlicePort:
    port = mapping_field(value, path)
    protocol = string_field(port.get("protocol"), f"{path}.protocol") or "TCP"
    return SlicePort(
        name=string_field(port.get("name"), f"{path}.name") or "",
        port=port_number(port.get("port"), f"{path}.port"),
        protocol=protocol,
    )


def _endpoint(value: object, path: str) -> SliceEndpoint:
    endpoint = mapping_field(value, path)
    addresses = _list(endpoint.get("addresses"), f"{path}.addresses")
    if not addresses or not all(isinstance(a, str) and a for a in addresses):
        raise ObjectError(f"{path}.addresses", "must be a non-empty list of strings")
    conditions = mapping_field(endpoint.get("conditions"), f"{path}.conditions")
    # Kubernetes: an unknown (absent) `ready` means ready; a terminating endpoint is not.
    ready = conditions.get("ready") is not False and conditions.get("terminating") is not True
    target = mapping_field(endpoint.get("targetRef"), f"{path}.targetRef")
    pod = string_field(target.get("name"), f"{path}.targetRef.name")
    return SliceEndpoint(
        addresses=tuple(addresses), ready=ready, pod=pod if target.get("kind") == "Pod" else None
    )


def slice_endpoints(
    service: Service, slices: Iterable[EndpointSlice], pods: Mapping[str, Workload]
) -> dict[int, tuple[Endpoint, ...]]:
    """Service port number -> the ready endpoints its slices list (`pods`: the namespace's pods
    by name, for the labels of endpoints that name one), sorted by address."""
    result: dict[int, list[Endpoint]] = {port.port: [] for port in service.ports}
    for endpoint_slice in slices:
        if endpoint_slice.address_type == "FQDN":
            continue
        for service_port in service.ports:
            numbers = [
                p.port
                for p in endpoint_slice.ports
                if p.name == service_port.name and p.protocol == service_port.protocol
            ]
            if not numbers:
                continue
            for endpoint in endpoint_slice.endpoints:
                if not endpoint.ready:
                    continue
                pod = pods.get(endpoint.pod) if endpoint.pod else None
                result[service_port.port].append(
                    Endpoint(
                        endpoint.addresses[0],  # the others are the same endpoint (fungible)
                        numbers[0],
                        pod.labels if pod else {},
                        pod.name if pod else "",
                        service.namespace,
                        pod.service_account if pod else "",
                        pod.workload_name if pod else "",
                    )
                )
    # An address listed twice (two slices during a controller's update) is one endpoint.
    return {
        port: tuple(sorted({(e.ip, e.port): e for e in found}.values(), key=endpoint_order))
        for port, found in result.items()
    }
