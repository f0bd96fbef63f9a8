"""The mesh state: one immutable snapshot of everything translation reads.

A source builds a new MeshState for every change it sees (never mutating an old one), so the xDS
side can translate a state while the next one is being built, and compare states freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from control.api.models.destination_rule import DestinationRule
from control.api.models.service_entry import ServiceEntry
from control.api.models.virtual_service import VirtualService
from control.api.registry import MeshResource
from control.config.loader import Document
from control.config.mesh_config import MeshConfig
from control.plane.model.credentials import Credential
from control.plane.model.endpoints import Endpoint
from control.plane.model.jwks import JwksDocument
from control.plane.model.kube_objects import Namespace, Service, Workload

ObjectKey = tuple[str, str]  # (namespace, name)
__all__ = ["ConfigProblem", "Document", "MeshState", "ObjectKey"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A document that was skipped (severity "error") or applied with a warning."""

    origin: str
    kind: str
    name: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        what = f"{self.kind} {self.name}".strip() or "document"
        return f"{self.origin}: {what}: {self.message}"


def _frozen(mapping: Mapping[Any, Any] | None = None) -> Mapping[Any, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class MeshState:
    """Everything the translation needs. Collections are read-only and sorted by key."""

    namespaces: Mapping[str, Namespace] = field(default_factory=_frozen)
    services: Mapping[ObjectKey, Service] = field(default_factory=_frozen)
    workloads: Mapping[ObjectKey, Workload] = field(default_factory=_frozen)
    # (namespace, service) -> service port number -> ready endpoints
    endpoints: Mapping[ObjectKey, Mapping[int, tuple[Endpoint, ...]]] = field(
        default_factory=_frozen
    )
    service_entries: tuple[MeshResource[ServiceEntry], ...] = ()
    virtual_services: tuple[MeshResource[VirtualService], ...] = ()
    destination_rules: tuple[MeshResource[DestinationRule], ...] = ()
    # Kinds later issues translate (Sidecar, security policies): kept, not yet used.
    other_config: tuple[MeshResource[Any], ...] = ()
    mesh: MeshConfig = field(default_factory=MeshConfig)
    # jwksUri -> what the control plane fetched (RequestAuthentication; control.plane.sources.jwks)
    jwks: Mapping[str, JwksDocument] = field(default_factory=_frozen)
    # (namespace, Secret name) -> the last good credential of a DestinationRule's
    # `credentialName` (`--kube` only: control.plane.sources.kube_secrets)
    credentials: Mapping[ObjectKey, Credential] = field(default_factory=_frozen)
    # Whether the source reads Secrets (`--kube`): without, credentialName is refused.
    reads_secrets: bool = False
    problems: tuple[ConfigProblem, ...] = ()

    def workload(self, namespace: str, name: str) -> Workload | None:
        return self.workloads.get((namespace, name))

    def summary(self) -> dict[str, int]:
        """Counts per kind, for the debug endpoint and logs."""
        return {
            "namespaces": len(self.namespaces),
            "services": len(self.services),
            "pods": len(self.workloads),
            "serviceEntries": len(self.service_entries),
            "virtualServices": len(self.virtual_services),
            "destinationRules": len(self.destination_rules),
            "otherMeshConfig": len(self.other_config),
            "problems": len(self.problems),
        }
