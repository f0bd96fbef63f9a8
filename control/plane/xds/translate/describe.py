"""What applies to one pod, as `istioctl x describe pod` shows it: the Services selecting it and
their ports, the effective mTLS mode of each pod port and the PeerAuthentication that set it,
the DestinationRule of each Service (the TLS a meshed client uses) and its VirtualServices.
Pure: from a mesh state, for `mizzen describe pod`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from control.plane.model.endpoints import labels_match
from control.plane.model.state import MeshState
from control.plane.xds.translate.authz.select import selector_matches
from control.plane.xds.translate.outbound_tls import TLS_MODE_LABEL
from control.plane.xds.translate.peer_authn import KIND, PeerAuthnIndex
from control.plane.xds.translate.policy import effective_policy, rules_by_host
from control.plane.xds.translate.port_protocol import port_protocol
from control.plane.xds.translate.service_registry import build_registry


class DescribeError(LookupError):
    """The pod is not in the mesh state."""


@dataclass(frozen=True, slots=True)
class PortView:
    name: str
    port: int
    protocol: str
    target: int | None  # the pod port, None when a named port does not resolve
    mtls: str  # the pod port's effective PeerAuthentication mode
    mtls_source: str
    client_tls: str  # what a meshed client sends: a DestinationRule's mode, or auto-mTLS's


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    host: str
    ports: tuple[PortView, ...]
    destination_rule: str | None  # namespace/name
    virtual_services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PodView:
    name: str
    namespace: str
    service_account: str
    meshed: bool  # the injector's tlsMode label
    workload_mtls: str
    workload_mtls_source: str
    peer_authentications: tuple[str, ...]  # namespace/name of those that apply
    services: tuple[ServiceView, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "pod": f"{self.name}.{self.namespace}",
            "serviceAccount": self.service_account,
            "meshed": self.meshed,
            "mtls": {"mode": self.workload_mtls, "source": self.workload_mtls_source},
            "peerAuthentications": list(self.peer_authentications),
            "services": [
                {
                    "name": s.name,
                    "host": s.host,
                    "destinationRule": s.destination_rule,
                    "virtualServices": list(s.virtual_services),
                    "ports": [
                        {
                            "name": p.name, "port": p.port, "protocol": p.protocol,
                            "targetPort": p.target, "mtls": p.mtls, "mtlsSource": p.mtls_source,
                            "clientTls": p.client_tls,
                        }
                        for p in s.ports
                    ],
                }
                for s in self.services
            ],
        }  # fmt: skip


def _applies(resource: Any, root: str, namespace: str, labels: Any) -> bool:
    """Istio's selection: the root namespace's without selector, the pod's namespace's without
    a selector or with a matching one."""
    where = resource.namespace or "default"
    selector = resource.spec.selector
    selected = selector is not None and bool(selector.match_labels)
    if where == root:
        return not selected
    return where == namespace and (not selected or selector_matches(selector, labels))


def describe_pod(state: MeshState, namespace: str, name: str) -> PodView:
    pod = state.workload(namespace, name)
    if pod is None:
        raise DescribeError(f"pod {name[:100]!r} not found in namespace {namespace[:100]!r}")
    root = state.mesh.root_namespace
    peers = PeerAuthnIndex(state.other_config, root)
    peer = peers.resolve(namespace, pod.labels)
    registry = build_registry(state)
    # What a client of the namespace sends: rules with a workloadSelector apply only to the
    # clients they select, so they do not speak for the others.
    general = [r for r in state.destination_rules if r.spec.workload_selector is None]
    rules = rules_by_host(general, registry, namespace)
    auto = state.mesh.enable_auto_mtls
    meshed = pod.labels.get(TLS_MODE_LABEL) == "istio"
    services = []
    for service in sorted(state.services.values(), key=lambda s: s.name):
        if service.namespace != namespace or not service.selector:
            continue
        if not labels_match(service.selector, pod.labels):
            continue
        host = f"{service.name}.{namespace}.svc.{state.mesh.cluster_domain}"
        rule = rules.get(host)
        ports = []
        for port in service.ports:
            target = port.resolved_target()
            number = target if isinstance(target, int) else pod.named_port(target, port.protocol)
            mode, source = peer.mode_and_source(number) if number else (peer.mode, peer.source)
            tls = effective_policy(rule.spec if rule else None, port.port, None).tls
            if tls is not None and tls.mode:
                client = f"{tls.mode} (DestinationRule)"
            elif auto and meshed and mode.value != "DISABLE":
                client = "ISTIO_MUTUAL (auto mTLS)"
            else:
                client = "plaintext" + (" (auto mTLS)" if auto else " (auto mTLS off)")
            ports.append(
                PortView(
                    port.name, port.port, port_protocol(port.name, port.app_protocol).value,
                    number, mode.value, str(source), client,
                )
            )  # fmt: skip
        routed = tuple(
            f"{v.namespace or 'default'}/{v.name}"
            for v in state.virtual_services
            if any(registry.resolve(h, v.namespace or "default") == host for h in v.spec.hosts)
        )
        rule_name = f"{rule.namespace or 'default'}/{rule.name}" if rule else None
        services.append(ServiceView(service.name, host, tuple(ports), rule_name, routed))
    applying = tuple(
        f"{r.namespace or 'default'}/{r.name}"
        for r in state.other_config
        if r.kind == KIND and _applies(r, root, namespace, pod.labels)
    )
    return PodView(
        name, namespace, pod.service_account, meshed, peer.mode.value, str(peer.source),
        applying, tuple(services),
    )  # fmt: skip


def render(view: PodView) -> str:
    """istioctl's layout, roughly."""
    lines = [
        f"Pod: {view.name}.{view.namespace}",
        f"   Service account: {view.service_account}",
        f"   Sidecar (tlsMode label): {'istio' if view.meshed else 'none'}",
        "--------------------",
        f"Effective PeerAuthentication: workload mTLS mode {view.workload_mtls} "
        f"(from {view.workload_mtls_source})",
    ]
    if view.peer_authentications:
        lines.append("Applied PeerAuthentication: " + ", ".join(view.peer_authentications))
    for service in view.services:
        lines += ["--------------------", f"Service: {service.name} ({service.host})"]
        for port in service.ports:
            target = port.target if port.target is not None else "?"
            lines.append(
                f"   Port: {port.name or '-'} {port.port}/{port.protocol} targets pod port "
                f"{target}: mTLS {port.mtls} (from {port.mtls_source}); "
                f"clients send {port.client_tls}"
            )
        if service.destination_rule:
            lines.append(f"DestinationRule: {service.destination_rule}")
        for routed in service.virtual_services:
            lines.append(f"VirtualService: {routed}")
    if not view.services:
        lines.append("No Service selects this pod: no inbound ports are configured")
    return "\n".join(lines) + "\n"
