"""The admission webhook configurations of one revision, selecting as Istio's injector does.

Mutating entries (at most one calls the webhook for any pod; pods labelled
`sidecar.istio.io/inject=false` are never sent; the system namespaces and the install's own never):
- every revision: namespaces labelled `istio.io/rev=<rev>` (and no `istio-injection`), and, in
  namespaces with neither label, pods labelled `istio.io/rev=<rev>`;
- the default revision also: namespaces labelled `istio-injection=enabled`, and, in namespaces
  with neither label, pods labelled `sidecar.istio.io/inject=true` without `istio.io/rev`.
So a canary is tried by labelling one namespace `istio.io/rev=canary`, as Istio users do.

The validating entries split the mesh's objects the same way: the default revision judges those
without `istio.io/rev` (and those labelled with it), another revision those labelled with it.
`caBundle` is not rendered: the control plane's leader patches it in, and a later apply (which
does not own the field) leaves it alone.
"""

from __future__ import annotations

from typing import Any, Final

from control.install.args import WEBHOOK_SERVICE_PORT
from control.install.names import DEFAULT_REVISION, REVISION_LABEL, Names
from control.install.values import InstallValues

INJECTION_LABEL: Final = "istio-injection"
POD_INJECT_LABEL: Final = "sidecar.istio.io/inject"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
NEVER_INJECTED: Final = ("kube-system", "kube-public", "kube-node-lease", "local-path-storage")
# The plural resource names of the mesh kinds, per API group (what the validator is sent).
MESH_RESOURCES: Final = {
    "networking.istio.io": (
        "virtualservices",
        "destinationrules",
        "serviceentries",
        "sidecars",
        "gateways",
    ),
    "security.istio.io": ("peerauthentications", "authorizationpolicies", "requestauthentications"),
}


def _expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    expression: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        expression["values"] = list(values)
    return expression


def _client(names: Names, path: str) -> dict[str, Any]:
    return {
        "service": {
            "name": names.control_plane,
            "namespace": names.namespace,
            "path": path,
            "port": WEBHOOK_SERVICE_PORT,
        }
    }


def _inject_entry(
    values: InstallValues,
    name: str,
    namespace_expressions: list[dict[str, Any]],
    object_expressions: list[dict[str, Any]],
) -> dict[str, Any]:
    names = Names.of(values)
    excluded = _expression(NAMESPACE_NAME_LABEL, "NotIn", *NEVER_INJECTED, values.namespace)
    return {
        "name": name,
        "clientConfig": _client(names, "/inject"),
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ],
        "namespaceSelector": {"matchExpressions": [*namespace_expressions, excluded]},
        "objectSelector": {"matchExpressions": object_expressions},
        "matchPolicy": "Equivalent",
        "failurePolicy": values.webhook.failure_policy,
        "sideEffects": "None",
        "timeoutSeconds": values.webhook.timeout_seconds,
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1"],
    }


def mutating_webhook(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    names = Names.of(values)
    rev = values.revision
    not_opted_out = _expression(POD_INJECT_LABEL, "NotIn", "false")
    entries = [
        _inject_entry(
            values,
            "rev.namespace.sidecar-injector.mizzen.io",
            [_expression(REVISION_LABEL, "In", rev), _expression(INJECTION_LABEL, "DoesNotExist")],
            [not_opted_out],
        ),
        _inject_entry(
            values,
            "rev.object.sidecar-injector.mizzen.io",
            [
                _expression(REVISION_LABEL, "DoesNotExist"),
                _expression(INJECTION_LABEL, "DoesNotExist"),
            ],
            [not_opted_out, _expression(REVISION_LABEL, "In", rev)],
        ),
    ]
    if rev == DEFAULT_REVISION:
        entries = [
            _inject_entry(
                values,
                "namespace.sidecar-injector.mizzen.io",
                [_expression(INJECTION_LABEL, "In", "enabled")],
                [not_opted_out],
            ),
            *entries,
            _inject_entry(
                values,
                "object.sidecar-injector.mizzen.io",
                [
                    _expression(INJECTION_LABEL, "DoesNotExist"),
                    _expression(REVISION_LABEL, "DoesNotExist"),
                ],
                [
                    _expression(POD_INJECT_LABEL, "In", "true"),
                    _expression(REVISION_LABEL, "DoesNotExist"),
                ],
            ),
        ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": names.mutating_webhook, "labels": labels},
        "webhooks": entries,
    }


def _validate_entry(
    values: InstallValues, name: str, object_expression: dict[str, Any]
) -> dict[str, Any]:
    names = Names.of(values)
    return {
        "name": name,
        "clientConfig": _client(names, "/validate"),
        "rules": [
            {
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [group],
                "apiVersions": ["*"],
                "resources": list(resources),
                "scope": "Namespaced",
            }
            for group, resources in MESH_RESOURCES.items()
        ],
        "objectSelector": {"matchExpressions": [object_expression]},
        "matchPolicy": "Equivalent",
        "failurePolicy": values.webhook.failure_policy,
        "sideEffects": "None",
        "timeoutSeconds": values.webhook.timeout_seconds,
        "admissionReviewVersions": ["v1"],
    }


def validating_webhook(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    names = Names.of(values)
    entries = [
        _validate_entry(
            values,
            "rev.validation.mizzen.io",
            _expression(REVISION_LABEL, "In", values.revision),
        )
    ]
    if values.revision == DEFAULT_REVISION:
        entries.insert(
            0,
            _validate_entry(
                values, "validation.mizzen.io", _expression(REVISION_LABEL, "DoesNotExist")
            ),
        )
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": names.validating_webhook, "labels": labels},
        "webhooks": entries,
    }
