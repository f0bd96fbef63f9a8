"""Which mTLS mode a workload's inbound ports need: PeerAuthentication resolved as Istio does
(pilot's `ComposePeerAuthentication`).

- Mesh level: a policy in the root namespace without a selector; namespace level: one in the
  workload's namespace without a selector; workload level: one in the workload's namespace whose
  selector matches (a root-namespace policy with a selector is ignored, as in Istio).
- Within a level the oldest wins (`metadata.creationTimestamp`), then the first by name; a
  policy without a timestamp (from files) comes after those with one.
- Applied mesh -> namespace -> workload; UNSET (or no `mtls`) inherits the level above; with no
  policy anywhere the mode is PERMISSIVE.
- Port level (`portLevelMtls`, keyed by the workload's port) only from the workload-level policy;
  UNSET there inherits the workload's mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from control.api.models.security import MutualTLS, PeerAuthentication
from control.api.registry import MeshResource
from control.plane.xds.translate.authz.select import selector_matches

KIND: Final = "PeerAuthentication"


class MtlsMode(StrEnum):
    PERMISSIVE = "PERMISSIVE"
    STRICT = "STRICT"
    DISABLE = "DISABLE"


@dataclass(frozen=True, slots=True)
class Source:
    """The policy that set a mode: `level` is mesh, namespace, workload or default."""

    level: str
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.level})" if self.name else self.level


DEFAULT_SOURCE: Final = Source("default")


@dataclass(frozen=True, slots=True)
class PeerMtls:
    """A workload's resolved modes: one for the workload, and per port where a workload-level
    policy sets `portLevelMtls`. Hashable: workloads under equal modes share a translation."""

    mode: MtlsMode = MtlsMode.PERMISSIVE
    source: Source = DEFAULT_SOURCE
    ports: tuple[tuple[int, MtlsMode, Source], ...] = ()

    def for_port(self, port: int) -> MtlsMode:
        return self.mode_and_source(port)[0]

    def mode_and_source(self, port: int) -> tuple[MtlsMode, Source]:
        for number, mode, source in self.ports:
            if number == port:
                return mode, source
        return self.mode, self.source


PERMISSIVE: Final = PeerMtls()


def _mode(mtls: MutualTLS | None) -> MtlsMode | None:
    """None for UNSET (inherit)."""
    if mtls is None or mtls.mode is None or mtls.mode == "UNSET":
        return None
    return MtlsMode(mtls.mode)


def _has_selector(spec: PeerAuthentication) -> bool:
    return spec.selector is not None and bool(spec.selector.match_labels)


class PeerAuthnIndex:
    """One state's PeerAuthentications by namespace, oldest first; `resolve` per workload."""

    def __init__(self, resources: Iterable[MeshResource[Any]], root_namespace: str) -> None:
        self.root_namespace = root_namespace
        self.by_namespace: dict[str, list[MeshResource[PeerAuthentication]]] = {}
        for resource in resources:
            if resource.kind == KIND:
                self.by_namespace.setdefault(resource.namespace or "default", []).append(resource)
        for found in self.by_namespace.values():
            found.sort(key=lambda r: (not r.created, r.created, r.name))
        self._resolved: dict[tuple[str, frozenset[tuple[str, str]]], PeerMtls] = {}

    def _first(
        self, namespace: str, labels: Mapping[str, str] | None
    ) -> MeshResource[PeerAuthentication] | None:
        """The oldest (first) policy of a namespace: without selector (`labels` None), or with
        one matching `labels`."""
        for resource in self.by_namespace.get(namespace, ()):
            selected = _has_selector(resource.spec)
            if labels is None and not selected:
                return resource
            if labels is not None and selected and selector_matches(resource.spec.selector, labels):
                return resource
        return None

    def resolve(self, namespace: str, labels: Mapping[str, str]) -> PeerMtls:
        """Memoised: every client's auto-mTLS asks it for every meshed endpoint."""
        if not self.by_namespace:
            return PERMISSIVE
        key = (namespace, frozenset(labels.items()))
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(namespace, labels)
        return found

    def _resolve(self, namespace: str, labels: Mapping[str, str]) -> PeerMtls:
        mode, source = MtlsMode.PERMISSIVE, DEFAULT_SOURCE
        levels = [("mesh", self._first(self.root_namespace, None))]
        if namespace != self.root_namespace:
            levels.append(("namespace", self._first(namespace, None)))
            levels.append(("workload", self._first(namespace, labels)))
        workload: MeshResource[PeerAuthentication] | None = None
        for level, resource in levels:
            if resource is None:
                continue
            found = _mode(resource.spec.mtls)
            if found is not None:
                mode, source = found, Source(level, resource.namespace or "default", resource.name)
            if level == "workload":
                workload = resource
        ports: list[tuple[int, MtlsMode, Source]] = []
        if workload is not None:
            for number, mtls in sorted(workload.spec.port_level_mtls.items()):
                found = _mode(mtls)
                where = Source("port", workload.namespace or "default", workload.name)
                ports.append((number, found or mode, where if found else source))
        return PeerMtls(mode, source, tuple(ports))
