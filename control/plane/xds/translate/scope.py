"""What one proxy can see (Istio's SidecarScope): the `Sidecar` that applies to it, the hosts its
egress lists, the VirtualServices and DestinationRules exported to its namespace.

Without a Sidecar a proxy sees every host (narrowed only by `exportTo`). A Sidecar applies when
its `workloadSelector` matches the workload (first by name when several do), else the one
without a selector in the proxy's namespace, else the one without a selector in the mesh's root
namespace. `egress[].hosts` entries are `<namespace>/<dnsName>`: namespace `.` (the Sidecar's
own) or `*` (any); dnsName `*`, `*.suffix` or an exact hostname. A `~` prefix on the namespace
subtracts (Istio 1.31): `~ns1/*` removes every host of ns1 from what the other entries import,
`~/foo.com` removes foo.com from every namespace (so `~/*` alone imports nothing, as before).
Egress ports are not told apart: the hosts of all egress listeners are visible on all their ports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from control.api.models.sidecar import Sidecar
from control.api.registry import MeshResource
from control.config.mesh_config import OutboundMode
from control.plane.model.endpoints import labels_match

EgressHost = tuple[str, str]  # (namespace or "*", dnsName pattern), "." already resolved


def host_matches(pattern: str, hostname: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return hostname.endswith(pattern[1:])
    return pattern == hostname


def exported(export_to: Iterable[str], owner_namespace: str, namespace: str) -> bool:
    """Istio's exportTo: empty or `*` means everywhere, `.` the owner's namespace, `~` nowhere."""
    targets = tuple(export_to)
    if not targets:
        return True
    return any(
        t == "*" or t == namespace or (t == "." and owner_namespace == namespace) for t in targets
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """Hashable: proxies with equal scopes (and equal relevant labels) share one translation of
    their outbound config."""

    namespace: str
    sidecar: str | None = None  # "<namespace>/<name>" of the Sidecar that applies
    egress: tuple[EgressHost, ...] | None = None  # None: no Sidecar, every host
    outbound_mode: OutboundMode | None = None  # the Sidecar's outboundTrafficPolicy
    excluded: tuple[EgressHost, ...] = ()  # `~` entries; namespace "*": every namespace

    def _excluded(self, hostname: str, host_namespace: str) -> bool:
        return any(
            (ns == "*" or ns == host_namespace) and host_matches(pattern, hostname)
            for ns, pattern in self.excluded
        )

    def sees_host(self, hostname: str, host_namespace: str, export_to: Iterable[str] = ()) -> bool:
        if not exported(export_to, host_namespace, self.namespace):
            return False
        if self.egress is None:
            return True
        return any(
            (ns == "*" or ns == host_namespace) and host_matches(pattern, hostname)
            for ns, pattern in self.egress
        ) and not self._excluded(hostname, host_namespace)

    def sees_config(self, owner_namespace: str, hosts: Iterable[str]) -> bool:
        """A VirtualService of `owner_namespace` routing `hosts` (resolved): selected by the
        egress entries whose namespace part names its namespace (Istio's rule), unless the
        exclusions remove every host it routes."""
        if self.egress is None:
            return True
        hosts = tuple(hosts)
        if hosts and all(self._excluded(h, owner_namespace) for h in hosts):
            return False
        for ns, pattern in self.egress:
            if ns not in ("*", owner_namespace):
                continue
            if pattern == "*" or any(_overlaps(pattern, h) for h in hosts):
                return True
        return False


def _overlaps(pattern: str, host: str) -> bool:
    """Can the egress pattern and a (possibly wildcard) VirtualService host name a common host?"""
    if host_matches(pattern, host) or host == "*":
        return True
    if host.startswith("*."):
        return pattern.endswith(host[1:]) or host_matches(pattern, host[2:])
    return False


def _egress(
    sidecar: MeshResource[Sidecar], dot: str
) -> tuple[tuple[EgressHost, ...], tuple[EgressHost, ...]]:
    """(imported, excluded) egress hosts, `.` read as `dot` (the proxy's namespace: for the
    Sidecar's own proxies that is its namespace; for the root namespace's default, each
    proxy's own); an exclusion without a namespace (`~/foo.com`) applies to every one."""
    hosts: list[EgressHost] = []
    excluded: list[EgressHost] = []
    for listener in sidecar.spec.egress:
        for entry in listener.hosts:
            namespace, _, pattern = entry.partition("/")
            into = hosts
            if namespace.startswith("~"):
                into, namespace = excluded, namespace[1:] or "*"
            resolved = (dot if namespace == "." else namespace, pattern)
            if resolved not in into:
                into.append(resolved)
    return tuple(hosts), tuple(excluded)


def select_sidecar(
    sidecars: Iterable[MeshResource[Sidecar]], labels: Mapping[str, str]
) -> MeshResource[Sidecar] | None:
    """Among one namespace's Sidecars (in name order): a selector match, else the default."""
    default: MeshResource[Sidecar] | None = None
    for sidecar in sidecars:
        selector = sidecar.spec.workload_selector
        if selector is not None and selector.labels:
            if labels_match(selector.labels, labels):
                return sidecar
        elif default is None:
            default = sidecar
    return default


def scope_of(
    namespace: str,
    labels: Mapping[str, str],
    sidecars: Mapping[str, tuple[MeshResource[Sidecar], ...]],
    root_namespace: str,
) -> Scope:
    sidecar = select_sidecar(sidecars.get(namespace, ()), labels)
    if sidecar is None and namespace != root_namespace:
        root = [s for s in sidecars.get(root_namespace, ()) if _no_selector(s)]
        sidecar = root[0] if root else None
    if sidecar is None:
        return Scope(namespace)
    policy = sidecar.spec.outbound_traffic_policy
    mode = OutboundMode(policy.mode) if policy is not None and policy.mode else None
    egress, excluded = _egress(sidecar, namespace) if sidecar.spec.egress else (None, ())
    name = f"{sidecar.namespace}/{sidecar.name}"
    return Scope(namespace, name, egress, mode, excluded)


def _no_selector(sidecar: MeshResource[Sidecar]) -> bool:
    selector = sidecar.spec.workload_selector
    return selector is None or not selector.labels
