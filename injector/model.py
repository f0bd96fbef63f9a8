"""The injector's inputs and outputs. The pod itself stays a plain dict (type the envelope, not
the world)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JsonPatch = list[dict[str, Any]]


class SkipReason(StrEnum):
    """Why a pod was not injected: one value, reused in logs, metrics labels and `--explain`."""

    HOST_NETWORK = "host_network"
    ISTIO_SIDECAR_PRESENT = "istio_sidecar_present"
    IGNORED_NAMESPACE = "ignored_namespace"
    NAMESPACE_DISABLED = "namespace_disabled"
    NAMESPACE_NOT_ENABLED = "namespace_not_enabled"
    POD_OPTED_OUT = "pod_opted_out"
    REVISION_MISMATCH = "revision_mismatch"

    @property
    def text(self) -> str:
        return _SKIP_TEXT[self]


_SKIP_TEXT: Mapping[SkipReason, str] = {
    SkipReason.HOST_NETWORK: "pod uses hostNetwork: a sidecar would capture the node's traffic",
    SkipReason.ISTIO_SIDECAR_PRESENT: "pod already has Istio's sidecar (sidecar.istio.io/status)",
    SkipReason.IGNORED_NAMESPACE: "namespace is never injected (system or mesh namespace)",
    SkipReason.NAMESPACE_DISABLED: "namespace is labelled istio-injection=disabled",
    SkipReason.NAMESPACE_NOT_ENABLED: "namespace is not labelled for injection and the pod did "
    "not opt in with the label sidecar.istio.io/inject=true",
    SkipReason.POD_OPTED_OUT: "pod opted out with sidecar.istio.io/inject=false",
    SkipReason.REVISION_MISMATCH: "namespace's istio.io/rev names another revision",
}


class InjectionError(ValueError):
    """Bad input in the pod: `field` names the annotation or field path, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class InjectionContext:
    """What the caller knows beyond the pod.

    `namespace_labels` None means "unknown, but the webhook's selectors already chose this pod":
    the decision is then made as for a namespace labelled istio-injection=enabled.
    """

    namespace: str
    namespace_labels: Mapping[str, str] | None = None
    workload_name: str | None = None


@dataclass(frozen=True)
class InjectionResult:
    """The pod after injection (equal to the input when skipped), the JSON patch that gets there,
    the skip reason if any, warnings for the user, and an explanation of each decision."""

    pod: dict[str, Any]
    patch: JsonPatch
    skip_reason: SkipReason | None = None
    warnings: tuple[str, ...] = ()
    explanation: tuple[str, ...] = field(default=())

    @property
    def injected(self) -> bool:
        return self.skip_reason is None
