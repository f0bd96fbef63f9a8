"""The translation entry point: the Envoy resources of one sidecar, from the mesh state."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from control.api.models.virtual_service import VirtualService
from control.api.registry import MeshResource
from control.model.endpoints import labels_match
from control.model.mesh_config import OutboundMode
from control.model.state import MeshState
from control.xds.translate import names
from control.xds.translate.clusters import (
    InboundPort,
    fixed_clusters,
    inbound_clusters,
    outbound_clusters,
)
from control.xds.translate.listeners import (
    http_outbound,
    sni_outbound,
    tcp_outbound,
    virtual_inbound,
    virtual_outbound,
)
from control.xds.translate.policy import rules_by_host
from control.xds.translate.protocol import Protocol, port_protocol
from control.xds.translate.proxy import Proxy, with_workload
from control.xds.translate.registry import Registry, build_registry
from control.xds.translate.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    Resources,
    from_dicts,
)
from control.xds.translate.routes import (
    Destinations,
    route_configuration,
    virtual_services_by_host,
)

_RESERVED_PORTS = frozenset({15000, 15001, 15006, 15020, 15021, 15090})


def inbound_ports(state: MeshState, proxy: Proxy) -> list[InboundPort]:
    """The target ports of the Services that select this proxy's workload, first one wins."""
    pod = state.workload(proxy.namespace, proxy.pod)
    found: dict[int, InboundPort] = {}
    for (namespace, _), service in state.services.items():
        if namespace != proxy.namespace or not service.selector:
            continue
        if not labels_match(service.selector, proxy.labels):
            continue
        for port in service.ports:
            if port.protocol != "TCP":
                continue
            target = port.resolved_target()
            number = target if isinstance(target, int) else (
                pod.named_port(target, port.protocol) if pod else None
            )  # fmt: skip
            if number is None or number in _RESERVED_PORTS or number in found:
                continue
            found[number] = InboundPort(number, port_protocol(port.name, port.app_protocol))
    return [found[p] for p in sorted(found)]


def _tcp_listeners(
    registry: Registry,
    routing: dict[str, MeshResource[VirtualService]],
    destinations: Destinations,
    proxy: Proxy,
    http_ports: set[int],
    fallback: str,
) -> list[dict[str, Any]]:
    """`<vip>_<port>` per TCP port of a host with addresses. Hosts without one (a DNS
    ServiceEntry) share `0.0.0.0_<port>`: TLS ones are told apart by SNI (so one external HTTPS
    host does not swallow all port-443 traffic), one plain-TCP host takes the rest."""
    listeners: dict[str, dict[str, Any]] = {}
    by_sni: dict[int, list[tuple[str, list[tuple[str, int]]]]] = {}
    wildcard: dict[int, list[tuple[str, int]]] = {}
    for host in registry.hosts.values():
        for port in host.ports:
            if port.protocol.is_http or port.protocol is Protocol.UDP:
                continue
            clusters = _tcp_route(host.hostname, port.number, routing, destinations, proxy)
            for address in host.addresses:
                listener = tcp_outbound(address, port.number, clusters)
                listeners.setdefault(listener["name"], listener)
            if host.addresses or port.number in http_ports:
                continue
            if port.protocol in (Protocol.TLS, Protocol.HTTPS):
                by_sni.setdefault(port.number, []).append((host.hostname, clusters))
            else:
                wildcard.setdefault(port.number, clusters)
    for number in sorted(set(by_sni) | set(wildcard)):
        default = wildcard.get(number)
        if number in by_sni:
            listener = sni_outbound(number, by_sni[number], default or [(fallback, 1)])
        else:
            assert default is not None
            listener = tcp_outbound(names.WILDCARD, number, default)
        listeners[listener["name"]] = listener
    return [listeners[name] for name in sorted(listeners)]


def _tcp_route(
    hostname: str,
    port: int,
    routing: dict[str, MeshResource[VirtualService]],
    destinations: Destinations,
    proxy: Proxy,
) -> list[tuple[str, int]]:
    """A VirtualService `tcp` rule's destinations (weights), else the host's own cluster."""
    service = routing.get(hostname)
    if service is not None:
        namespace = service.namespace or "default"
        for rule in service.spec.tcp:
            applies = not rule.match or any(
                (m.port is None or m.port == port)
                and labels_match(m.source_labels, proxy.labels)
                and (not m.gateways or "mesh" in m.gateways)
                for m in rule.match
            )
            targets = [d for d in rule.route if d.destination is not None and d.weight != 0]
            if applies and targets:
                return [
                    (destinations.cluster(d.destination, namespace, port)[0], d.weight or 100)
                    for d in targets
                    if d.destination is not None
                ]
    return [(names.outbound_cluster(port, hostname), 1)]


def translation_key(state: MeshState, proxy: Proxy) -> Hashable:
    """Everything of the proxy that `translate` reads: proxies with equal keys (the replicas of
    one Deployment) get equal resources, so a push translates once per key, not per proxy."""
    proxy = with_workload(proxy, state)
    pod = state.workload(proxy.namespace, proxy.pod)
    ports = pod.container_ports if pod is not None else ()
    return (proxy.namespace, tuple(sorted(proxy.labels.items())), ports)


def translate(state: MeshState, proxy: Proxy) -> Resources:
    """All listeners, clusters, routes and endpoints of one sidecar (consistent by construction;
    `consistency.problems` checks it again before anything is published)."""
    proxy = with_workload(proxy, state)
    registry = build_registry(state)
    rules = rules_by_host(state, registry, proxy.namespace)
    clusters, assignments = outbound_clusters(registry, rules)
    inbound = inbound_ports(state, proxy)
    clusters += fixed_clusters() + inbound_clusters(inbound)
    destinations = Destinations(registry, rules, {c["name"] for c in clusters})
    routing = virtual_services_by_host(state.virtual_services, registry)
    mode = state.mesh.outbound_traffic_policy.mode

    http_ports = sorted(
        {p.number for h in registry.hosts.values() for p in h.ports if p.protocol.is_http}
    )
    routes = [
        route_configuration(port, registry, routing, destinations, proxy, mode)
        for port in http_ports
    ]
    fallback = (
        names.BLACKHOLE_CLUSTER if mode is OutboundMode.REGISTRY_ONLY else names.PASSTHROUGH_CLUSTER
    )
    listeners = [virtual_outbound(fallback), virtual_inbound(inbound)]
    listeners += [http_outbound(port) for port in http_ports]
    listeners += _tcp_listeners(registry, routing, destinations, proxy, set(http_ports), fallback)
    return from_dicts(
        {CLUSTER: clusters, ENDPOINT: assignments, LISTENER: listeners, ROUTE: routes}
    )
