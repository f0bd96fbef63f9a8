"""Route tables (RDS) per outbound HTTP port: a virtual host per service on that port, routed by
its VirtualService (or Istio's default route), then a catch-all for unknown hosts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control.api.models.destination_rule import DestinationRule
from control.api.models.virtual_service import Destination, VirtualService
from control.api.registry import MeshResource
from control.config.mesh_config import OutboundMode
from control.plane.xds.translate import names
from control.plane.xds.translate.http_routes import default_retry_policy, envoy_routes
from control.plane.xds.translate.policy import effective_policy, hash_policy
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.service_registry import Registry, ServiceHost
from control.plane.xds.translate.telemetry import outbound_virtual_host


def virtual_services_by_host(
    services: tuple[MeshResource[VirtualService], ...], registry: Registry
) -> dict[str, MeshResource[VirtualService]]:
    """Hostname -> the VirtualService routing it for sidecars (the first, in name order)."""
    found: dict[str, MeshResource[VirtualService]] = {}
    for service in services:
        if service.spec.gateways and "mesh" not in service.spec.gateways:
            continue
        namespace = service.namespace or "default"
        for written in service.spec.hosts:
            for host in registry.matching(registry.resolve(written, namespace)):
                found.setdefault(host.hostname, service)
    return found


class Destinations:
    """Turns a VirtualService destination into an existing cluster name (or the black hole, as a
    route to a missing service must neither break consistency nor reach anything)."""

    def __init__(
        self,
        registry: Registry,
        rules: Mapping[str, MeshResource[DestinationRule]],
        cluster_names: set[str],
    ) -> None:
        self.registry = registry
        self.rules = rules
        self.cluster_names = cluster_names

    def cluster(
        self, destination: Destination, namespace: str, port: int
    ) -> tuple[str, list[dict[str, Any]]]:
        hostname = self.registry.resolve(destination.host or "", namespace)
        host = self.registry.hosts.get(hostname)
        if host is None:
            return names.BLACKHOLE_CLUSTER, []
        if destination.port is not None and destination.port.number:
            number = destination.port.number
        elif len(host.ports) == 1:
            number = host.ports[0].number
        else:
            number = port
        subset_name = destination.subset or ""
        name = names.outbound_cluster(number, hostname, subset_name)
        if name not in self.cluster_names:
            return names.BLACKHOLE_CLUSTER, []
        rule = self.rules.get(hostname)
        spec = rule.spec if rule else None
        subset = next((s for s in spec.subsets if s.name == subset_name), None) if spec else None
        return name, hash_policy(effective_policy(spec, number, subset).load_balancer)


def domains(host: ServiceHost, proxy: Proxy, port: int) -> list[str]:
    base = [host.hostname, *host.short_names]
    if host.namespace == proxy.namespace:
        base += host.local_names
    base += host.addresses
    out: list[str] = []
    for name in base:
        for domain in (name, f"{name}:{port}"):
            if domain not in out:
                out.append(domain)
    return out


def _default_route(cluster: str, hashing: list[dict[str, Any]]) -> dict[str, Any]:
    action: dict[str, Any] = {
        "cluster": cluster,
        "timeout": "0s",
        "retry_policy": default_retry_policy(),
    }
    if hashing:
        action["hash_policy"] = hashing
    return {"name": "default", "match": {"prefix": "/"}, "route": action}


def _catch_all(mode: OutboundMode) -> dict[str, Any]:
    if mode is OutboundMode.REGISTRY_ONLY:
        return {
            "name": "block_all",
            "domains": ["*"],
            "routes": [
                {"name": "block_all", "match": {"prefix": "/"}, "direct_response": {"status": 502}}
            ],
        }
    return {
        "name": "allow_any",
        "domains": ["*"],
        "routes": [
            {
                "name": "allow_any",
                "match": {"prefix": "/"},
                "route": {"cluster": names.PASSTHROUGH_CLUSTER, "timeout": "0s"},
            }
        ],
    }


def route_configuration(
    port: int,
    registry: Registry,
    routing: Mapping[str, MeshResource[VirtualService]],
    destinations: Destinations,
    proxy: Proxy,
    mode: OutboundMode,
) -> dict[str, Any]:
    virtual_hosts: list[dict[str, Any]] = []
    used: set[str] = set()
    for host in registry.hosts.values():
        host_port = host.port(port)
        if host_port is None or not host_port.protocol.is_http:
            continue
        host_domains = [d for d in domains(host, proxy, port) if d not in used]
        if not host_domains:
            continue
        used.update(host_domains)
        routes: list[dict[str, Any]] = []
        service = routing.get(host.hostname)
        if service is not None:
            namespace = service.namespace or "default"

            def cluster_of(
                destination: Destination, namespace: str = namespace
            ) -> tuple[str, list[dict[str, Any]]]:
                return destinations.cluster(destination, namespace, port)

            prefix = f"{namespace}.{service.name}"
            routes = envoy_routes(service.spec.http, proxy, port, cluster_of, prefix)
        if not routes:
            default = names.outbound_cluster(port, host.hostname)
            _, hashing = destinations.cluster(Destination(host=host.hostname), host.namespace, port)
            routes = [_default_route(default, hashing)]
        virtual_host = {
            "name": f"{host.hostname}:{port}",
            "domains": host_domains,
            "routes": routes,
        }
        # Telemetry hook: requests to mesh services carry this sidecar's identity.
        virtual_hosts.append(outbound_virtual_host(virtual_host, bool(host.local_names)))
    virtual_hosts.append(outbound_virtual_host(_catch_all(mode), mesh_service=False))
    return {
        "name": names.route_name(port),
        "virtual_hosts": virtual_hosts,
        "validate_clusters": False,
    }
