"""What translation derives from a mesh state once and every proxy reuses: the registry, the
Sidecars and Services by namespace, the label keys VirtualServices match sources on; and, per
proxy, the three things its translation depends on (`ProxyInputs`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from control.api.models.destination_rule import DestinationRule
from control.api.models.sidecar import Sidecar
from control.api.models.virtual_service import VirtualService
from control.api.registry import MeshResource
from control.config.mesh_config import OutboundMode
from control.plane.model.endpoints import labels_match
from control.plane.model.kube_objects import Service
from control.plane.model.state import MeshState
from control.plane.xds.translate.authz.inbound import NO_POLICY, InboundPolicy, MeshPolicies
from control.plane.xds.translate.clusters import InboundPort
from control.plane.xds.translate.peer_authn import PeerAuthnIndex, PeerMtls
from control.plane.xds.translate.port_protocol import port_protocol
from control.plane.xds.translate.proxy import DEFAULT_CAPTURE, CapturePorts, Proxy, with_workload
from control.plane.xds.translate.scope import Scope, exported, scope_of
from control.plane.xds.translate.service_registry import Registry, ServiceHost, build_registry

_RESERVED_PORTS = frozenset({15000, 15001, 15006, 15020, 15021, 15090})
# Proxy shapes whose inputs one state's index keeps (far more than a mesh has Deployments).
_MAX_SHAPES = 100_000
# Label text (keys and values, plus a per-label allowance for the objects that hold them) the
# shapes of proxies of no known workload may keep: their labels are what a client claimed in
# its node metadata (up to 256 KiB each, any number of clients one after another), and a shape
# key holds them until the next state. A pod's labels are the state's own, held anyway.
MAX_CLAIMED_LABEL_BYTES = 32 * 1024 * 1024
_LABEL_OVERHEAD = 200

Labels = tuple[tuple[str, str], ...]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProxyInputs:
    """Everything of a proxy its resources depend on. Equal inputs, equal resources: replicas
    of one Deployment (and, with a Sidecar, every proxy of a namespace that exposes the same
    ports) share one translation."""

    scope: Scope
    labels: Labels  # only the labels (key and value) some VirtualService match names
    inbound: tuple[InboundPort, ...]
    policy: InboundPolicy = NO_POLICY  # the inbound chains' policy (issue 13)
    # The PeerAuthentication modes of its ports; None: no workload certificate, no mTLS.
    peer: PeerMtls | None = None
    capture: CapturePorts = DEFAULT_CAPTURE  # the ports the capture listeners bind
    # The DestinationRules with a workloadSelector that select this proxy (their names; such a
    # rule applies only to the workloads it selects in its own namespace).
    selected_rules: tuple[str, ...] = ()

    @property
    def sds(self) -> bool:
        return self.peer is not None

    @property
    def outbound_key(self) -> tuple[Scope, Labels, bool, tuple[str, ...]]:
        """Not the capture port: its one listener is made apart (`capture_key`)."""
        return (self.scope, self.labels, self.sds, self.selected_rules)

    @property
    def capture_key(self) -> tuple[OutboundMode | None, int]:
        """What the capture listener reads: the fallback (the scope's own outbound mode, None
        for the mesh's) and the port; alike for every scope with the same mode."""
        return (self.scope.outbound_mode, self.capture.outbound)

    @property
    def inbound_key(
        self,
    ) -> tuple[tuple[InboundPort, ...], InboundPolicy, PeerMtls | None, int]:
        return (self.inbound, self.policy, self.peer, self.capture.inbound)


def _source_label_pairs(
    services: tuple[MeshResource[VirtualService], ...],
) -> frozenset[tuple[str, str]]:
    """Every label (key and value) some VirtualService match names in its `sourceLabels`: all
    that outbound translation reads of a proxy's labels. A label value no match names cannot
    change any match, so proxies differing only in such values share one translation, and a
    client cannot make new translations by claiming new values."""
    pairs: set[tuple[str, str]] = set()
    for service in services:
        spec = service.spec
        matches: list[Any] = [m for rule in spec.http for m in rule.match]
        matches += [m for rule in spec.tcp for m in rule.match]
        matches += [m for rule in spec.tls for m in rule.match]
        for match in matches:
            pairs.update(match.source_labels.items())
    return frozenset(pairs)


@dataclass(frozen=True, slots=True)
class _Routing:
    position: int  # in the state's order
    service: MeshResource[VirtualService]
    hosts: tuple[str, ...]  # resolved in its namespace


class MeshIndex:
    """One state's derived lookups. Built once per state, read by every translation of it."""

    def __init__(self, state: MeshState) -> None:
        self.state = state
        self.registry: Registry = build_registry(state)
        sidecars: dict[str, list[MeshResource[Sidecar]]] = {}
        for resource in state.other_config:
            if resource.kind == "Sidecar":
                sidecars.setdefault(resource.namespace or "default", []).append(resource)
        self.sidecars: Mapping[str, tuple[MeshResource[Sidecar], ...]] = {
            ns: tuple(sorted(found, key=lambda s: s.name)) for ns, found in sidecars.items()
        }
        services: dict[str, list[Service]] = {}
        for (namespace, _), service in state.services.items():
            services.setdefault(namespace, []).append(service)
        self.services_by_namespace: Mapping[str, tuple[Service, ...]] = {
            ns: tuple(found) for ns, found in services.items()
        }
        self.source_label_pairs = _source_label_pairs(state.virtual_services)
        hosts: dict[str, list[ServiceHost]] = {}
        for host in self.registry.hosts.values():
            hosts.setdefault(host.namespace, []).append(host)
        self.hosts_by_namespace: Mapping[str, list[ServiceHost]] = hosts
        routing: dict[str, list[_Routing]] = {}
        for position, routed in enumerate(state.virtual_services):
            namespace = routed.namespace or "default"
            resolved = tuple(self.registry.resolve(h, namespace) for h in routed.spec.hosts)
            routing.setdefault(namespace, []).append(_Routing(position, routed, resolved))
        self.routing_by_namespace: Mapping[str, list[_Routing]] = routing
        self.policies = MeshPolicies(state, lambda host: host in self.registry.hosts)
        self.peer_authn = PeerAuthnIndex(state.other_config, state.mesh.root_namespace)
        selecting: dict[str, list[MeshResource[DestinationRule]]] = {}
        for rule in state.destination_rules:
            if rule.spec.workload_selector is not None:
                selecting.setdefault(rule.namespace or "default", []).append(rule)
        self.selecting_rules: Mapping[str, list[MeshResource[DestinationRule]]] = selecting
        self._shared: dict[Hashable, Any] = {}
        self._inputs: dict[Hashable, ProxyInputs] = {}  # by the proxy's shape (`inputs`)
        self.claimed_label_bytes = 0  # of the shapes kept whose labels a client claimed

    def selected_rules(self, namespace: str, labels: Mapping[str, str]) -> tuple[str, ...]:
        """The names of the DestinationRules of `namespace` whose workloadSelector selects a
        workload with `labels`."""
        return tuple(
            sorted(
                rule.name
                for rule in self.selecting_rules.get(namespace, ())
                if rule.spec.workload_selector is not None
                and labels_match(rule.spec.workload_selector.match_labels, labels)
            )
        )

    def shared(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """A part of a translation that every scope with the same `key` shares, made once for
        this state. Keys hold ids of objects this index keeps alive (hosts, rules, routes)."""
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = make()
        return found

    def _namespaces(self, scope: Scope) -> Iterable[str] | None:
        """The namespaces a scope's egress names; None: any."""
        if scope.egress is None or any(ns == "*" for ns, _ in scope.egress):
            return None
        return sorted({ns for ns, _ in scope.egress})

    def visible_registry(self, scope: Scope) -> Registry:
        namespaces = self._namespaces(scope)
        candidates = (
            self.registry.hosts.values() if namespaces is None
            else [h for ns in namespaces for h in self.hosts_by_namespace.get(ns, ())]
        )  # fmt: skip
        visible = sorted(
            (h for h in candidates if scope.sees_host(h.hostname, h.namespace, h.export_to)),
            key=lambda h: h.hostname,
        )
        return Registry({h.hostname: h for h in visible}, self.registry.cluster_domain)

    def visible_virtual_services(self, scope: Scope) -> tuple[MeshResource[VirtualService], ...]:
        """In the state's order (the first VirtualService of a host wins)."""
        namespaces = self._namespaces(scope)
        if namespaces is None:
            namespaces = list(self.routing_by_namespace)
        found = [
            r for ns in namespaces for r in self.routing_by_namespace.get(ns, ())
            if exported(r.service.spec.export_to, ns, scope.namespace)
            and (scope.egress is None or scope.sees_config(ns, r.hosts))
        ]  # fmt: skip
        return tuple(r.service for r in sorted(found, key=lambda r: r.position))

    def inputs(self, proxy: Proxy) -> ProxyInputs:
        """The proxy's inputs, computed once per shape: replicas (same namespace, labels,
        certificate, capture ports and, for named target ports, container ports) share them.
        The key is everything of the proxy `compute_inputs` reads (tests/control/
        test_inputs_memo.py varies each); the rest comes from this index's state."""
        pod = self.state.workload(proxy.namespace, proxy.pod)
        labels = pod.labels if pod is not None else proxy.labels
        key = (
            proxy.namespace,
            frozenset(labels.items()),
            proxy.sds,
            proxy.capture,
            pod.container_ports if pod is not None else None,
        )
        found = self._inputs.get(key)
        if found is None:
            found = self.compute_inputs(proxy)
            if self._may_keep(labels if pod is None else None):
                self._inputs[key] = found
        return found

    def _may_keep(self, claimed: Mapping[str, str] | None) -> bool:
        """Whether one more shape is kept, its labels (`claimed`: a client's) within bounds;
        a shape not kept is computed again each time (a proxy per push)."""
        if len(self._inputs) >= _MAX_SHAPES:
            return False
        if claimed:
            size = sum(len(k) + len(v) + _LABEL_OVERHEAD for k, v in claimed.items())
            if self.claimed_label_bytes + size > MAX_CLAIMED_LABEL_BYTES:
                return False
            self.claimed_label_bytes += size
        return True

    def compute_inputs(self, proxy: Proxy) -> ProxyInputs:
        proxy = with_workload(proxy, self.state)
        scope = scope_of(
            proxy.namespace, proxy.labels, self.sidecars, self.state.mesh.root_namespace
        )
        labels = tuple(
            sorted(pair for pair in proxy.labels.items() if pair in self.source_label_pairs)
        )
        policy = self.policies.for_workload(proxy.namespace, dict(proxy.labels))
        peer = self.peer_authn.resolve(proxy.namespace, proxy.labels) if proxy.sds else None
        ports = tuple(self.inbound_ports(proxy))
        selected = self.selected_rules(proxy.namespace, proxy.labels)
        return ProxyInputs(scope, labels, ports, policy, peer, proxy.capture, selected)

    def inbound_ports(self, proxy: Proxy) -> list[InboundPort]:
        """The target ports of the Services that select this proxy's workload, first one wins."""
        pod = self.state.workload(proxy.namespace, proxy.pod)
        found: dict[int, InboundPort] = {}
        reserved = _RESERVED_PORTS | {proxy.capture.outbound, proxy.capture.inbound}
        for service in self.services_by_namespace.get(proxy.namespace, ()):
            if not service.selector or not labels_match(service.selector, proxy.labels):
                continue
            for port in service.ports:
                if port.protocol != "TCP":
                    continue
                target = port.resolved_target()
                number = target if isinstance(target, int) else (
                    pod.named_port(target, port.protocol) if pod else None
                )  # fmt: skip
                if number is None or number in reserved or number in found:
                    continue
                host = f"{service.name}.{service.namespace}.svc.{self.registry.cluster_domain}"
                found[number] = InboundPort(
                    number,
                    port_protocol(port.name, port.app_protocol),
                    (host, service.name, service.namespace),
                )
        return [found[p] for p in sorted(found)]
