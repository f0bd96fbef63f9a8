"""What changed between two mesh states, in the terms visibility is decided in (Istio's
ConfigsUpdated): hosts (a Service with its endpoints, a ServiceEntry host) and routing configs
(VirtualServices, DestinationRules) with the hosts they apply to. `Change.affects(scope)` says
whether a proxy of that scope could get different resources; when unsure, it says yes."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from control.api.registry import MeshResource
from control.plane.model.state import MeshState
from control.plane.xds.translate.scope import Scope, exported
from control.plane.xds.translate.service_registry import Registry, ServiceHost, build_registry


@dataclass(frozen=True, slots=True)
class ChangedHost:
    hostname: str
    namespace: str
    export_to: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChangedConfig:
    """A VirtualService (`hosts` as written, resolved) or DestinationRule that changed, and the
    registry hosts it applies to (before or after)."""

    kind: str
    namespace: str
    export_to: tuple[str, ...]
    patterns: tuple[str, ...]
    hosts: tuple[ChangedHost, ...]


@dataclass(frozen=True, slots=True)
class Change:
    everything: bool = False
    hosts: tuple[ChangedHost, ...] = ()
    configs: tuple[ChangedConfig, ...] = field(default=())
    # Namespaces whose credentials (DestinationRule credentialName Secrets) changed: only
    # proxies of the same namespace are served them.
    credentials: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.everything and not self.hosts and not self.configs and not self.credentials

    def affects(self, scope: Scope) -> bool:
        if self.everything or scope.namespace in self.credentials:
            return True
        if any(scope.sees_host(h.hostname, h.namespace, h.export_to) for h in self.hosts):
            return True
        for config in self.configs:
            if not exported(config.export_to, config.namespace, scope.namespace):
                continue
            if config.kind == "VirtualService" and not scope.sees_config(
                config.namespace, config.patterns
            ):
                continue
            if any(scope.sees_host(h.hostname, h.namespace, h.export_to) for h in config.hosts):
                return True
        return False

    def describe(self, limit: int = 20) -> dict[str, Any]:
        hosts = sorted({h.hostname for h in self.hosts})
        configs = sorted({f"{c.kind} {c.namespace}" for c in self.configs})
        return {
            "everything": self.everything,
            "hostCount": len(hosts),
            "hosts": hosts[:limit],
            "configs": configs[:limit],
            "credentials": list(self.credentials[:limit]),
        }


def _changed_keys(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> set[Any]:
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def _by_key(resources: Iterable[MeshResource[Any]]) -> dict[Hashable, MeshResource[Any]]:
    return {r.key: r for r in resources}


def _peer_authentications(state: MeshState) -> list[MeshResource[Any]]:
    return [r for r in state.other_config if r.kind == "PeerAuthentication"]


def _host(host: ServiceHost) -> ChangedHost:
    return ChangedHost(host.hostname, host.namespace, host.export_to)


def diff(
    old: MeshState, new: MeshState, before: Registry | None = None, after: Registry | None = None
) -> Change:
    """Conservative: anything not understood here (the mesh config) changes everything.
    `before`/`after`: the states' registries, when the caller has them already."""
    if old.reads_secrets != new.reads_secrets:
        return Change(everything=True)
    if old.mesh != new.mesh or _peer_authentications(old) != _peer_authentications(new):
        return Change(everything=True)  # PeerAuthentication: every client's auto-mTLS reads it
    old_registry = before or build_registry(old)
    new_registry = after or build_registry(new)
    hosts: list[ChangedHost] = []
    for namespace, name in _changed_keys(old.services, new.services) | _changed_keys(
        old.endpoints, new.endpoints
    ):
        hostname = f"{name}.{namespace}.svc.{new.mesh.cluster_domain}"
        hosts.append(ChangedHost(hostname, namespace))
    workload_namespaces = {ns for ns, _ in _changed_keys(old.workloads, new.workloads)}
    old_entries, new_entries = _by_key(old.service_entries), _by_key(new.service_entries)
    for key in old_entries.keys() | new_entries.keys():
        a, b = old_entries.get(key), new_entries.get(key)
        selected = any(
            e is not None
            and e.spec.workload_selector is not None
            and e.namespace in workload_namespaces
            for e in (a, b)
        )
        if a == b and not selected:
            continue
        for entry in (a, b):
            if entry is not None:
                namespace = entry.namespace or "default"
                hosts += [ChangedHost(h, namespace, entry.spec.export_to) for h in entry.spec.hosts]
    configs: list[ChangedConfig] = []
    for kind, old_items, new_items in (
        ("VirtualService", old.virtual_services, new.virtual_services),
        ("DestinationRule", old.destination_rules, new.destination_rules),
    ):
        a_items, b_items = _by_key(old_items), _by_key(new_items)
        for key in _changed_keys(a_items, b_items):
            for resource in (a_items.get(key), b_items.get(key)):
                if resource is not None:
                    configs.append(_config(kind, resource, old_registry, new_registry))
    credentials = sorted({ns for ns, _ in _changed_keys(old.credentials, new.credentials)})
    return Change(hosts=tuple(hosts), configs=tuple(configs), credentials=tuple(credentials))


def _config(kind: str, resource: MeshResource[Any], old: Registry, new: Registry) -> ChangedConfig:
    namespace = resource.namespace or "default"
    written = resource.spec.hosts if kind == "VirtualService" else (resource.spec.host,)
    patterns: list[str] = []
    matched: dict[str, ChangedHost] = {}
    for registry in (old, new):
        for host in written:
            if not host:
                continue
            pattern = registry.resolve(host, namespace)
            patterns.append(pattern)
            for found in registry.matching(pattern):
                matched[found.hostname] = _host(found)
    return ChangedConfig(
        kind, namespace, resource.spec.export_to, tuple(dict.fromkeys(patterns)),
        tuple(matched.values()),
    )  # fmt: skip
