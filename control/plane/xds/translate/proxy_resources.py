"""The translation entry point: the Envoy resources of one sidecar, from the mesh state."""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Any

from control.api.models.destination_rule import DestinationRule
from control.api.models.virtual_service import VirtualService
from control.api.registry import MeshResource
from control.config.mesh_config import OutboundMode
from control.plane.model.endpoints import labels_match
from control.plane.model.state import MeshState
from control.plane.xds.translate import names
from control.plane.xds.translate.authz.inbound import NO_POLICY, InboundPolicy, path_settings
from control.plane.xds.translate.clusters import (
    InboundPort,
    fixed_clusters,
    host_clusters,
    inbound_clusters,
)
from control.plane.xds.translate.credential_tls import requested, secret_resources
from control.plane.xds.translate.index import MeshIndex, ProxyInputs
from control.plane.xds.translate.listeners import (
    http_outbound,
    sni_outbound,
    tcp_outbound,
    virtual_inbound,
    virtual_outbound,
)
from control.plane.xds.translate.outbound_tls import ClientTls
from control.plane.xds.translate.peer_authn import PeerMtls
from control.plane.xds.translate.policy import rules_by_host
from control.plane.xds.translate.port_protocol import Protocol
from control.plane.xds.translate.proxy import Proxy
from control.plane.xds.translate.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    Named,
    Resources,
    from_dict,
    from_dicts,
    merge,
)
from control.plane.xds.translate.routes import (
    Destinations,
    route_configuration,
    virtual_services_by_host,
)
from control.plane.xds.translate.scope import Scope, exported
from control.plane.xds.translate.service_registry import Registry, ServiceHost
from control.plane.xds.translate.telemetry import OFF, Telemetry
from control.plane.xds.translate.tracing import extra_clusters


def _tcp_listeners(
    index: MeshIndex,
    registry: Registry,
    routing: dict[str, MeshResource[VirtualService]],
    destinations: Destinations,
    proxy: Proxy,
    http_ports: set[int],
    fallback: str,
    telemetry: Telemetry,
) -> list[Named]:
    """`<vip>_<port>` per TCP port of a host with addresses. Hosts without one (a DNS
    ServiceEntry) share `0.0.0.0_<port>`: TLS ones are told apart by SNI (so one external HTTPS
    host does not swallow all port-443 traffic), one plain-TCP host takes the rest. A
    `<vip>_<port>` listener is what its address, port and destinations make it (and the
    state's telemetry): made once per state for every scope that routes it alike."""
    listeners: dict[str, Named] = {}
    by_sni: dict[int, list[tuple[str, list[tuple[str, int]]]]] = {}
    wildcard: dict[int, list[tuple[str, int]]] = {}
    for host in registry.hosts.values():
        for port in host.ports:
            if port.protocol.is_http or port.protocol is Protocol.UDP:
                continue
            clusters = _tcp_route(host.hostname, port.number, routing, destinations, proxy)
            for address in host.addresses:
                name = names.listener_name(address, port.number)
                if name not in listeners:  # the first host with the address and port wins
                    listeners[name] = index.shared(
                        ("tcp listener", address, port.number, tuple(clusters)),
                        functools.partial(_tcp_listener, address, port.number, clusters, telemetry),
                    )
            if host.addresses or port.number in http_ports:
                continue
            if port.protocol in (Protocol.TLS, Protocol.HTTPS):
                by_sni.setdefault(port.number, []).append((host.hostname, clusters))
            else:
                wildcard.setdefault(port.number, clusters)
    for number in sorted(set(by_sni) | set(wildcard)):
        default = wildcard.get(number)
        if number in by_sni:
            listener = sni_outbound(number, by_sni[number], default or [(fallback, 1)], telemetry)
        else:
            assert default is not None
            listener = tcp_outbound(names.WILDCARD, number, default, telemetry)
        listeners[listener["name"]] = from_dict(LISTENER, listener)
    return [listeners[name] for name in sorted(listeners)]


def _tcp_listener(
    address: str, port: int, clusters: list[tuple[str, int]], telemetry: Telemetry
) -> Named:
    return from_dict(LISTENER, tcp_outbound(address, port, clusters, telemetry))


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


def _fake_proxy(inputs: ProxyInputs) -> Proxy:
    """What the outbound half reads of a proxy: its namespace and its source-matched labels."""
    namespace = inputs.scope.namespace
    return Proxy(node_id="", ip="", pod="", namespace=namespace, labels=dict(inputs.labels))


def _fallback(mode: OutboundMode) -> str:
    """Where traffic to no known host goes: Istio's `outboundTrafficPolicy`."""
    return (
        names.BLACKHOLE_CLUSTER if mode is OutboundMode.REGISTRY_ONLY else names.PASSTHROUGH_CLUSTER
    )


def outbound_mode(state: MeshState, scope: Scope) -> OutboundMode:
    """The scope's `outboundTrafficPolicy`: its Sidecar's, else the mesh's."""
    return scope.outbound_mode or state.mesh.outbound_traffic_policy.mode


def capture_resources(mode: OutboundMode, telemetry: Telemetry, port: int) -> Resources:
    """The listener the redirect's outbound capture port reaches (`virtualOutbound`): the one
    outbound resource that depends on that port, which the proxy claims in its node metadata.
    Made apart from the outbound half, so a new claimed port costs this listener, not a
    translation of everything the scope sees."""
    return from_dicts({LISTENER: [virtual_outbound(_fallback(mode), telemetry, port)]})


def outbound_resources(index: MeshIndex, inputs: ProxyInputs) -> Resources:
    """The half shared by every proxy with the same scope and source labels: outbound clusters
    and endpoints (only the hosts the scope sees), route tables, outbound listeners. Clusters,
    endpoints and listeners are the same for scopes that see the same hosts, rules and
    VirtualServices (without Sidecars: every namespace), so they are made once per state for
    all of them (`MeshIndex.shared`); route tables name hosts by their short names in the
    proxy's own namespace, and are each scope's own."""
    state = index.state
    scope = inputs.scope
    proxy = _fake_proxy(inputs)
    registry = index.visible_registry(scope)
    # A rule with a workloadSelector applies only to the proxies it selects in its namespace.
    visible_rules = [
        r for r in state.destination_rules
        if (r.spec.workload_selector is None
            and exported(r.spec.export_to, r.namespace or "default", scope.namespace))
        or ((r.namespace or "default") == scope.namespace and r.name in inputs.selected_rules)
    ]  # fmt: skip
    rules = rules_by_host(visible_rules, registry, scope.namespace)
    client_tls = ClientTls(
        sds=inputs.sds,
        auto_mtls=state.mesh.enable_auto_mtls,
        trust_domain=state.mesh.trust_domain,
        peers=index.peer_authn,
        credentials=state.credentials,
    )
    hosts_key = tuple(map(id, registry.hosts.values()))
    rules_key = tuple((host, id(rule)) for host, rule in rules.items())
    clustered, (certs, cas) = index.shared(
        ("clusters", hosts_key, rules_key, inputs.sds),
        lambda: _cluster_part(index, registry, rules, client_tls),
    )
    # Secrets of the proxy's own namespace only, and only those its clusters name.
    secrets = from_dicts({SECRET: secret_resources(certs, cas, state.credentials, scope.namespace)})
    destinations = Destinations(registry, rules, set(clustered.serialized(CLUSTER)))
    routing = virtual_services_by_host(index.visible_virtual_services(scope), registry)
    mode = outbound_mode(state, scope)
    telemetry = Telemetry.of(state.mesh)

    http_ports = sorted(
        {p.number for h in registry.hosts.values() for p in h.ports if p.protocol.is_http}
    )
    routes = [
        route_configuration(port, registry, routing, destinations, proxy, mode)
        for port in http_ports
    ]
    fallback = _fallback(mode)
    routing_key = tuple((host, id(service)) for host, service in routing.items())
    listening = index.shared(
        ("listeners", hosts_key, rules_key, routing_key, inputs.sds, inputs.labels, fallback),
        lambda: _listener_part(
            index, registry, routing, destinations, proxy, http_ports, fallback, telemetry
        ),
    )  # fmt: skip
    routed = from_dicts({ROUTE: routes})
    by_type = {
        CLUSTER: clustered.serialized(CLUSTER),
        ENDPOINT: clustered.serialized(ENDPOINT),
        LISTENER: listening.serialized(LISTENER),
        ROUTE: routed.serialized(ROUTE),
        SECRET: secrets.serialized(SECRET),
    }
    return Resources(MappingProxyType(by_type))


_HostPart = tuple[Resources, tuple[set[str], set[str]]]


def _cluster_part(
    index: MeshIndex,
    registry: Registry,
    rules: dict[str, MeshResource[DestinationRule]],
    client_tls: ClientTls,
) -> _HostPart:
    """Clusters and endpoints, and the credential names (certificates, roots) their TLS asks
    the ADS stream for. Each host's are made once per state for every scope that sees it with
    the same rule (a namespace's hosts, seen by every scope that imports them); only the
    scope's collection of them is its own."""
    parts = [
        index.shared(
            ("host clusters", id(host), id(rule), client_tls.sds),
            functools.partial(_host_part, host, rule, client_tls),
        )
        for host in registry.hosts.values()
        for rule in (rules.get(host.hostname),)
    ]
    parts.append(index.shared(("fixed clusters",), _fixed_part))
    serialized = {
        t: [item for part, _ in parts for item in part.serialized(t).items()]
        for t in (CLUSTER, ENDPOINT)
    }
    certs = set().union(*(c for _, (c, _) in parts))
    cas = set().union(*(c for _, (_, c) in parts))
    return Resources.of_serialized(serialized), (certs, cas)


def _host_part(
    host: ServiceHost, rule: MeshResource[DestinationRule] | None, client_tls: ClientTls
) -> _HostPart:
    clusters: list[dict[str, Any]] = []
    assignments: list[dict[str, Any]] = []
    host_clusters(host, rule, client_tls, clusters, assignments)
    return from_dicts({CLUSTER: clusters, ENDPOINT: assignments}), requested(clusters)


def _fixed_part() -> _HostPart:
    clusters = fixed_clusters()
    return from_dicts({CLUSTER: clusters}), requested(clusters)


def _listener_part(
    index: MeshIndex,
    registry: Registry,
    routing: dict[str, MeshResource[VirtualService]],
    destinations: Destinations,
    proxy: Proxy,
    http_ports: list[int],
    fallback: str,
    telemetry: Telemetry,
) -> Resources:
    paths = path_settings(index.state.mesh)
    listeners = [http_outbound(port, telemetry, paths) for port in http_ports]
    tcp = _tcp_listeners(
        index, registry, routing, destinations, proxy, set(http_ports), fallback, telemetry
    )
    own = from_dicts({LISTENER: listeners}).serialized(LISTENER).items()
    return Resources.of_serialized({LISTENER: [*own, *tcp]})


def inbound_resources(
    ports: tuple[InboundPort, ...],
    policy: InboundPolicy = NO_POLICY,
    telemetry: Telemetry = OFF,
    peer: PeerMtls | None = None,
    capture_port: int = names.INBOUND_CAPTURE_PORT,
) -> Resources:
    """The half that depends only on the proxy's own ports, the policies that apply to it
    (`peer`: its PeerAuthentication modes, None without a workload certificate), the mesh's
    telemetry and the port the inbound redirect targets."""
    clusters = inbound_clusters(ports) + extra_clusters(telemetry.tracer)
    listeners = [virtual_inbound(ports, policy, telemetry, peer, capture_port)]
    return from_dicts({CLUSTER: clusters, LISTENER: listeners})


def translate(state: MeshState, proxy: Proxy) -> Resources:
    """All listeners, clusters, routes and endpoints of one sidecar (consistent by construction;
    `consistency.problems` checks it again before anything is published). For many proxies of
    one state, `shared.MeshTranslation` computes the same with the halves shared."""
    index = MeshIndex(state)
    inputs = index.inputs(proxy)
    telemetry = Telemetry.of(state.mesh)
    inbound = inbound_resources(
        inputs.inbound, inputs.policy, telemetry, inputs.peer, inputs.capture.inbound
    )
    capture = capture_resources(
        outbound_mode(state, inputs.scope), telemetry, inputs.capture.outbound
    )
    return merge(outbound_resources(index, inputs), capture, inbound)
