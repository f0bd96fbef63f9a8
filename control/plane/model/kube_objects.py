"""The Kubernetes objects the control plane reads (Namespace, Service, Pod; EndpointSlice in
`endpoint_slices`), parsed into frozen records. Only the fields routing needs are kept; a
malformed field raises ObjectError naming it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from injector.workload import workload_name

DEFAULT_NAMESPACE = "default"


class ObjectError(ValueError):
    """A Kubernetes object the model cannot use; `path` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service; `target_port` is a number or the name of a container port."""

    port: int
    name: str = ""
    protocol: str = "TCP"
    app_protocol: str | None = None
    target_port: int | str | None = None

    def resolved_target(self) -> int | str:
        """The pod port traffic goes to: the target port, or the port itself when unset."""
        return self.port if self.target_port is None else self.target_port


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    namespace: str
    cluster_ip: str | None
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str] | None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True, slots=True)
class ContainerPort:
    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Workload:
    """A pod as routing sees it. `ready` follows the endpoints controller (see `pod_ready`)."""

    name: str
    namespace: str
    ip: str | None
    labels: Mapping[str, str]
    service_account: str
    phase: str
    ready: bool
    terminating: bool = False
    container_ports: tuple[ContainerPort, ...] = ()
    # The Deployment (etc.) it belongs to, from its owners (Istio's workload name): telemetry.
    workload_name: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def named_port(self, name: str, protocol: str) -> int | None:
        """The number of the container port called `name` (what a named targetPort means)."""
        for port in self.container_ports:
            if port.name == name and port.protocol == protocol:
                return port.port
        return None


def mapping_field(value: object, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ObjectError(path, "must be an object")
    return value


def string_field(value: object, path: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise ObjectError(path, "required string field")
        return None
    if not isinstance(value, str):
        raise ObjectError(path, "must be a string")
    return value


def _string_map(value: object, path: str) -> dict[str, str]:
    mapping = mapping_field(value, path)
    for key, item in mapping.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ObjectError(path, "must map strings to strings")
    return dict(mapping)


def port_number(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ObjectError(path, "must be a port number (1-65535)")
    return value


def object_metadata(obj: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    metadata = mapping_field(obj.get("metadata"), "metadata")
    name = string_field(metadata.get("name"), "metadata.name", required=True)
    namespace = string_field(metadata.get("namespace"), "metadata.namespace") or DEFAULT_NAMESPACE
    assert name is not None
    return name, namespace, _string_map(metadata.get("labels"), "metadata.labels")


def parse_namespace(obj: Mapping[str, Any]) -> Namespace:
    name, _, labels = object_metadata(obj)
    return Namespace(name=name, labels=labels)


def parse_service(obj: Mapping[str, Any]) -> Service:
    name, namespace, labels = object_metadata(obj)
    spec = mapping_field(obj.get("spec"), "spec")
    cluster_ip = string_field(spec.get("clusterIP"), "spec.clusterIP")
    if cluster_ip == "None":
        cluster_ip = None  # headless
    raw_ports = spec.get("ports") or []
    if not isinstance(raw_ports, list):
        raise ObjectError("spec.ports", "must be a list")
    ports = tuple(_service_port(p, f"spec.ports[{i}]") for i, p in enumerate(raw_ports))
    if len({p.port for p in ports}) != len(ports):
        raise ObjectError("spec.ports", "port numbers must be unique")
    raw_selector = spec.get("selector")
    selector = None if raw_selector is None else _string_map(raw_selector, "spec.selector")
    return Service(name, namespace, cluster_ip, ports, selector or None, labels)


def _service_port(value: object, path: str) -> ServicePort:
    port = mapping_field(value, path)
    target = port.get("targetPort")
    target_port: int | str | None
    if target is None or target == "" or target == 0:
        target_port = None
    elif isinstance(target, str) and not target.isdigit():
        target_port = target
    else:
        target_port = port_number(int(target), f"{path}.targetPort")
    protocol = string_field(port.get("protocol"), f"{path}.protocol") or "TCP"
    if protocol not in ("TCP", "UDP", "SCTP"):
        raise ObjectError(f"{path}.protocol", "must be TCP, UDP or SCTP")
    return ServicePort(
        port=port_number(port.get("port"), f"{path}.port"),
        name=string_field(port.get("name"), f"{path}.name") or "",
        protocol=protocol,
        app_protocol=string_field(port.get("appProtocol"), f"{path}.appProtocol"),
        target_port=target_port,
    )


def parse_pod(obj: Mapping[str, Any]) -> Workload:
    """A pod. Hand-written files often omit `status.phase`: a pod with an IP is then Running."""
    name, namespace, labels = object_metadata(obj)
    metadata = mapping_field(obj.get("metadata"), "metadata")
    spec = mapping_field(obj.get("spec"), "spec")
    status = mapping_field(obj.get("status"), "status")
    ip = string_field(status.get("podIP"), "status.podIP")
    phase = string_field(status.get("phase"), "status.phase") or ("Running" if ip else "Pending")
    account = string_field(spec.get("serviceAccountName"), "spec.serviceAccountName") or "default"
    terminating = metadata.get("deletionTimestamp") is not None
    return Workload(
        name=name,
        namespace=namespace,
        ip=ip,
        labels=labels,
        service_account=account,
        phase=phase,
        ready=pod_ready(ip, phase, status.get("conditions")) and not terminating,
        terminating=terminating,
        container_ports=_container_ports(spec),
        workload_name=workload_name(obj) or name,
    )


def pod_ready(ip: str | None, phase: str, conditions: object) -> bool:
    """As the endpoints controller: an IP and phase Running, unless a Ready condition says False."""
    if not ip or phase != "Running":
        return False
    if isinstance(conditions, list):
        for condition in conditions:
            if isinstance(condition, Mapping) and condition.get("type") == "Ready":
                return condition.get("status") != "False"
    return True


def _container_ports(spec: Mapping[str, Any]) -> tuple[ContainerPort, ...]:
    found: list[ContainerPort] = []
    containers = spec.get("containers") or []
    if not isinstance(containers, list):
        raise ObjectError("spec.containers", "must be a list")
    for c_index, container in enumerate(containers):
        ports = mapping_field(container, f"spec.containers[{c_index}]").get("ports") or []
        if not isinstance(ports, list):
            raise ObjectError(f"spec.containers[{c_index}].ports", "must be a list")
        for p_index, raw in enumerate(ports):
            path = f"spec.containers[{c_index}].ports[{p_index}]"
            port = mapping_field(raw, path)
            name = string_field(port.get("name"), f"{path}.name")
            if name:
                number = port_number(port.get("containerPort"), f"{path}.containerPort")
                protocol = string_field(port.get("protocol"), f"{path}.protocol") or "TCP"
                found.append(ContainerPort(name, number, protocol))
    return tuple(found)
