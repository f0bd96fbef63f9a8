"""The service registry a proxy routes to: Kubernetes Services and ServiceEntry hosts, unified as
`ServiceHost`s keyed by hostname (Istio's view: one host, its ports, its endpoints)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from control.api.models.service_entry import ServiceEntry
from control.api.registry import MeshResource
from control.plane.model.endpoints import labels_match
from control.plane.model.state import MeshState
from control.plane.xds.translate.port_protocol import Protocol, from_name, port_protocol


class Resolution(StrEnum):
    EDS = "EDS"  # endpoints pushed by the control plane (Services, STATIC ServiceEntries)
    STRICT_DNS = "STRICT_DNS"  # ServiceEntry DNS
    LOGICAL_DNS = "LOGICAL_DNS"  # ServiceEntry DNS_ROUND_ROBIN
    PASSTHROUGH = "PASSTHROUGH"  # ServiceEntry NONE: to the address the caller asked for


@dataclass(frozen=True, slots=True)
class HostEndpoint:
    address: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)
    weight: int | None = None
    # A mesh pod's workload and namespace (telemetry's endpoint metadata); empty otherwise.
    workload: str = ""
    namespace: str = ""
    service_account: str = ""  # a mesh pod's (the SPIFFE id a client's mTLS checks)


@dataclass(frozen=True, slots=True)
class HostPort:
    number: int
    name: str
    protocol: Protocol
    endpoints: tuple[HostEndpoint, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceHost:
    hostname: str
    namespace: str
    ports: tuple[HostPort, ...]
    addresses: tuple[str, ...]  # VIPs: a Service's cluster IP, a ServiceEntry's addresses
    resolution: Resolution
    # Names a client in `namespace` (or anywhere, for the qualified ones) may use in Host.
    short_names: tuple[str, ...] = ()
    local_names: tuple[str, ...] = ()  # only for clients in the same namespace
    export_to: tuple[str, ...] = ()  # a ServiceEntry's exportTo (empty: everywhere)

    def port(self, number: int) -> HostPort | None:
        return next((p for p in self.ports if p.number == number), None)


@dataclass(frozen=True, slots=True)
class Registry:
    hosts: Mapping[str, ServiceHost]
    cluster_domain: str

    def resolve(self, name: str, namespace: str) -> str:
        """A host as written in a VirtualService/DestinationRule of `namespace` -> hostname.
        `reviews` means reviews.<namespace>.svc.<domain> (Istio); `reviews.ns` and
        `reviews.ns.svc` are completed too, as Kubernetes DNS would."""
        if name in self.hosts or name.startswith("*"):
            return name
        dots = name.count(".")
        suffix = f"svc.{self.cluster_domain}"
        if dots == 0:
            return f"{name}.{namespace}.{suffix}"
        if dots == 1 and f"{name}.{suffix}" in self.hosts:
            return f"{name}.{suffix}"
        if name.endswith(".svc") and f"{name}.{self.cluster_domain}" in self.hosts:
            return f"{name}.{self.cluster_domain}"
        return name

    def matching(self, pattern: str) -> list[ServiceHost]:
        """Hosts an (already resolved) VirtualService host selects; `*.x.com` by suffix."""
        if pattern == "*":
            return list(self.hosts.values())
        if pattern.startswith("*."):
            suffix = pattern[1:]
            return [h for n, h in self.hosts.items() if n.endswith(suffix)]
        host = self.hosts.get(pattern)
        return [host] if host else []


def build_registry(state: MeshState) -> Registry:
    domain = state.mesh.cluster_domain
    hosts: dict[str, ServiceHost] = {}
    for (namespace, name), service in state.services.items():
        hostname = f"{name}.{namespace}.svc.{domain}"
        endpoints = state.endpoints.get((namespace, name), {})
        ports = tuple(
            HostPort(
                number=p.port,
                name=p.name,
                protocol=port_protocol(p.name, p.app_protocol, p.protocol),
                endpoints=tuple(
                    HostEndpoint(
                        e.ip, e.port, e.labels, None, e.workload, e.namespace, e.service_account
                    )
                    for e in endpoints.get(p.port, ())
                ),
            )
            for p in service.ports
            if p.protocol == "TCP"
        )
        hosts[hostname] = ServiceHost(
            hostname=hostname,
            namespace=namespace,
            ports=ports,
            addresses=(service.cluster_ip,) if service.cluster_ip else (),
            resolution=Resolution.EDS,
            short_names=(f"{name}.{namespace}.svc", f"{name}.{namespace}"),
            local_names=(name,),
        )
    for entry in state.service_entries:
        for host in _entry_hosts(entry, state):
            hosts.setdefault(host.hostname, host)  # a Kubernetes Service of that name wins
    return Registry(hosts=dict(sorted(hosts.items())), cluster_domain=domain)


_RESOLUTIONS = {
    "STATIC": Resolution.EDS,
    "DNS": Resolution.STRICT_DNS,
    "DNS_ROUND_ROBIN": Resolution.LOGICAL_DNS,
    "NONE": Resolution.PASSTHROUGH,
}


def _entry_hosts(resource: MeshResource[ServiceEntry], state: MeshState) -> list[ServiceHost]:
    spec = resource.spec
    namespace = resource.namespace or "default"
    if spec.resolution == "DYNAMIC_DNS":
        return []  # not served yet (validation warns): no clusters rather than wrong ones
    resolution = _RESOLUTIONS[spec.resolution or "NONE"]
    addresses = tuple(a for a in spec.addresses if _is_ip(a))
    found: list[ServiceHost] = []
    for hostname in spec.hosts:
        if hostname.startswith("*") and resolution is not Resolution.PASSTHROUGH:
            continue  # a wildcard has no address to resolve or list
        ports: list[HostPort] = []
        for port in spec.ports:
            if port.number is None:
                continue
            name = port.name or ""
            protocol = from_name(port.protocol) or port_protocol(name)
            target = port.target_port or port.number
            endpoints = _entry_endpoints(resource, hostname, name, target, resolution, state)
            ports.append(HostPort(port.number, name, protocol, endpoints))
        found.append(
            ServiceHost(
                hostname, namespace, tuple(ports), addresses, resolution, (hostname,),
                export_to=spec.export_to,
            )
        )  # fmt: skip
    return found


def _entry_endpoints(
    resource: MeshResource[ServiceEntry],
    hostname: str,
    port_name: str,
    target: int,
    resolution: Resolution,
    state: MeshState,
) -> tuple[HostEndpoint, ...]:
    spec = resource.spec
    if resolution is Resolution.PASSTHROUGH:
        return ()
    if spec.workload_selector is not None:
        selector = spec.workload_selector.labels
        return tuple(
            HostEndpoint(
                pod.ip, target, pod.labels, namespace=pod.namespace,
                service_account=pod.service_account,
            )
            for pod in state.workloads.values()
            if pod.ip and pod.ready and pod.namespace == resource.namespace
            and labels_match(selector, pod.labels)
        )  # fmt: skip
    if spec.endpoints:
        return tuple(
            HostEndpoint(e.address, e.ports.get(port_name, target), e.labels, e.weight)
            for e in spec.endpoints
            if e.address and not e.address.startswith("unix://")
        )
    if resolution in (Resolution.STRICT_DNS, Resolution.LOGICAL_DNS):
        return (HostEndpoint(hostname, target),)
    return ()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
