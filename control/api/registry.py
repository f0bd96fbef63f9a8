"""Kind -> spec model and rules, and the typed wrapper a valid object becomes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from control.api.models.base import ApiModel
from control.api.models.destination_rule import DestinationRule
from control.api.models.gateway import Gateway
from control.api.models.security import (
    AuthorizationPolicy,
    PeerAuthentication,
    RequestAuthentication,
)
from control.api.models.service_entry import ServiceEntry
from control.api.models.sidecar import Sidecar
from control.api.models.virtual_service import VirtualService
from control.api.rules import (
    destination_rule,
    gateway,
    security,
    service_entry,
    sidecar,
    virtual_service,
)
from control.api.rules.context import Findings

SpecT = TypeVar("SpecT", bound=ApiModel)

SPEC_MODELS: Final[dict[str, type[ApiModel]]] = {
    "VirtualService": VirtualService,
    "DestinationRule": DestinationRule,
    "ServiceEntry": ServiceEntry,
    "Sidecar": Sidecar,
    "Gateway": Gateway,
    "PeerAuthentication": PeerAuthentication,
    "AuthorizationPolicy": AuthorizationPolicy,
    "RequestAuthentication": RequestAuthentication,
}

Rules = Callable[[Any, Findings], None]
RULES: Final[dict[str, Rules]] = {
    "VirtualService": virtual_service.check,
    "DestinationRule": destination_rule.check,
    "ServiceEntry": service_entry.check,
    "Sidecar": sidecar.check,
    "Gateway": gateway.check,
    "PeerAuthentication": security.check_peer_authentication,
    "AuthorizationPolicy": security.check_authorization_policy,
    "RequestAuthentication": security.check_request_authentication,
}


@dataclass(frozen=True, slots=True)
class MeshResource(Generic[SpecT]):
    """A validated mesh object: its identity and its typed spec.

    `namespace` is None when the manifest did not say (the source decides the default).
    """

    group: str
    version: str
    kind: str
    name: str
    namespace: str | None
    spec: SpecT
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # metadata.creationTimestamp (RFC 3339, as the API server writes it), "" when not given:
    # Istio lets the oldest of competing policies win.
    created: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def key(self) -> tuple[str, str, str]:
        """(kind, namespace, name): unique among the config a source holds."""
        return self.kind, self.namespace or "", self.name

    def to_dict(self) -> dict[str, Any]:
        """Back to a Kubernetes object (only the fields the user set in spec)."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": metadata,
            "spec": self.spec.to_dict(),
        }
