"""Where each kind the install renders lives in the API (for apply, wait and delete), and which
objects every revision shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class ApiResource:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str = "", name: str = "") -> str:
        """`/api/v1/namespaces/ns/configmaps/name` and the like."""
        root = "/api/" if "/" not in self.api_version else "/apis/"
        path = root + self.api_version
        if self.namespaced:
            path += f"/namespaces/{namespace}"
        path += f"/{self.plural}"
        return f"{path}/{name}" if name else path


KNOWN: Final = {
    (r.api_version, r.kind): r
    for r in (
        ApiResource("v1", "Namespace", "namespaces", False),
        ApiResource("v1", "ServiceAccount", "serviceaccounts", True),
        ApiResource("v1", "ConfigMap", "configmaps", True),
        ApiResource("v1", "Secret", "secrets", True),
        ApiResource("v1", "Service", "services", True),
        ApiResource("apps/v1", "Deployment", "deployments", True),
        ApiResource("coordination.k8s.io/v1", "Lease", "leases", True),
        ApiResource("apps/v1", "StatefulSet", "statefulsets", True),
        ApiResource("apps/v1", "DaemonSet", "daemonsets", True),
        ApiResource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True),
        ApiResource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
        ApiResource(
            "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False
        ),
        ApiResource("rbac.authorization.k8s.io/v1", "Role", "roles", True),
        ApiResource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", True),
        ApiResource(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            False,
        ),
        ApiResource(
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            False,
        ),
        ApiResource(
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            False,
        ),
    )
}
# Shared by every revision of the mesh: removed only by `mizzen uninstall --purge`.
SHARED_KINDS: Final = frozenset({"Namespace", "CustomResourceDefinition"})


class UnknownKindError(ValueError):
    """A rendered object of a kind the install does not know how to address."""


def resource_of(obj: dict[str, Any]) -> ApiResource:
    key = (obj.get("apiVersion"), obj.get("kind"))
    found = KNOWN.get(key)  # type: ignore[arg-type]
    if found is None:
        name = obj.get("metadata", {}).get("name")
        raise UnknownKindError(f"{key[0]} {key[1]} {name!r}: not a kind the install handles")
    return found


def object_path(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    return resource_of(obj).path(metadata.get("namespace", ""), metadata["name"])
