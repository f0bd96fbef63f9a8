"""What the control plane may do, and nothing more: one rule per kind of call it makes.

Cluster-wide: read the mesh state (the kinds the Kubernetes source lists and watches), list and
watch Secrets (DestinationRule `credentialName`: RBAC cannot name Secrets users have not named
yet, so the grant covers every Secret; the control plane lists and watches only those a rule
with a workloadSelector names, each by `fieldSelector=metadata.name=<name>` in the rule's own
namespace, `control/plane/sources/kube_secrets.py`), review tokens (the CA authenticates
workloads with TokenReview), keep the root-certificate ConfigMap in every namespace, and patch
only its own webhook configurations (by name). In its namespace: the leader Lease, and the CA's
Secrets: read `mizzen-ca` and `cacerts` (by name), create `mizzen-ca` (a create cannot be
limited by name). A test replays the control plane's calls against these rules.
"""

from __future__ import annotations

from typing import Any, Final

from control.install.names import CA_SECRET, PLUGIN_CA_SECRET, Names

READ: Final = ["get", "list", "watch"]

# The kinds the control plane lists and watches (`control/plane/kube/reflector.WATCHED_KINDS`).
WATCHED: Final = {
    "": ["namespaces", "services", "pods"],
    "discovery.k8s.io": ["endpointslices"],
    "networking.istio.io": ["virtualservices", "destinationrules", "serviceentries", "sidecars"],
    "security.istio.io": ["peerauthentications", "authorizationpolicies", "requestauthentications"],
}


def _rule(
    group: str, resources: list[str], verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        rule["resourceNames"] = names
    return rule


def cluster_rules(names: Names) -> list[dict[str, Any]]:
    return [
        *(_rule(group, resources, READ) for group, resources in WATCHED.items()),
        _rule("", ["secrets"], ["list", "watch"]),  # credentialName: only named ones are read
        _rule("", ["configmaps"], ["get", "list", "create", "update"]),
        _rule("authentication.k8s.io", ["tokenreviews"], ["create"]),
        _rule(
            "admissionregistration.k8s.io",
            ["mutatingwebhookconfigurations"],
            ["get", "patch"],
            [names.mutating_webhook],
        ),
        _rule(
            "admissionregistration.k8s.io",
            ["validatingwebhookconfigurations"],
            ["get", "patch"],
            [names.validating_webhook],
        ),
    ]


def namespace_rules() -> list[dict[str, Any]]:
    return [
        _rule("", ["secrets"], ["get"], [CA_SECRET, PLUGIN_CA_SECRET]),
        _rule("", ["secrets"], ["create"]),
        _rule("coordination.k8s.io", ["leases"], ["get", "create", "update"]),
    ]


def rbac_objects(names: Names, labels: dict[str, str]) -> list[dict[str, Any]]:
    subject = {"kind": "ServiceAccount", "name": names.control_plane, "namespace": names.namespace}
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": names.control_plane,
                "namespace": names.namespace,
                "labels": labels,
            },
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": names.cluster_role, "labels": labels},
            "rules": cluster_rules(names),
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": names.cluster_role, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": names.cluster_role,
            },
            "subjects": [subject],
        },
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": names.role, "namespace": names.namespace, "labels": labels},
            "rules": namespace_rules(),
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": names.role, "namespace": names.namespace, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": names.role,
            },
            "subjects": [subject],
        },
    ]
