"""The rendered install's webhook configurations (manifests/install/mizzen.yaml): valid
Kubernetes objects, and selecting the right pods."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from control.api.kinds import VALIDATED_KINDS
from injector import InjectionConfig

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
INSTALL = MANIFESTS / "install" / "mizzen.yaml"
NEVER_INJECTED = {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}


def documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{document['kind']}/{document['metadata']['name']}", document)
        for document in yaml.safe_load_all(INSTALL.read_text())
        if document
    ]


def one(kind: str) -> dict[str, Any]:
    [document] = [d for _, d in documents() if d["kind"] == kind]
    return document


@pytest.mark.parametrize("version", ["1.30", "1.37"])
@pytest.mark.parametrize(("name", "document"), documents(), ids=[n for n, _ in documents()])
def test_valid_against_the_kubernetes_schema(
    name: str, document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("admissionReviewVersions", "v1"), ("timeoutSeconds", "ten"), ("selector", {})],
)
def test_the_schema_check_can_fail(field: str, value: Any) -> None:
    broken = copy.deepcopy(one("MutatingWebhookConfiguration"))
    broken["webhooks"][0][field] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37", strict=True)


def test_the_mutating_entries_are_safe_and_fast() -> None:
    config = one("MutatingWebhookConfiguration")
    assert len(config["webhooks"]) == 4
    for webhook in config["webhooks"]:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["sideEffects"] == "None"
        assert webhook["timeoutSeconds"] == 10
        assert webhook["reinvocationPolicy"] == "Never"
        assert webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["clientConfig"]["service"]["path"] == "/inject"
        [rule] = webhook["rules"]
        assert (rule["operations"], rule["apiGroups"], rule["resources"]) == (
            ["CREATE"], [""], ["pods"],
        )  # fmt: skip


@pytest.mark.parametrize("index", [0, 1])
def test_the_validating_entries_cover_the_mesh_groups(index: int) -> None:
    webhook = one("ValidatingWebhookConfiguration")["webhooks"][index]
    assert webhook["clientConfig"]["service"]["path"] == "/validate"
    covered = {
        (group, resource.lower())
        for rule in webhook["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    crds = [yaml.safe_load(p.read_text()) for p in sorted((MANIFESTS / "crds").glob("*.yaml"))]
    installed = {(crd["spec"]["group"], crd["spec"]["names"]["plural"]) for crd in crds}
    assert {crd["spec"]["names"]["kind"] for crd in crds} == {
        k for ks in VALIDATED_KINDS.values() for k in ks
    }
    assert covered == installed
    for rule in webhook["rules"]:
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]


def test_the_service_reaches_the_webhook_port() -> None:
    service = one("Service")
    [port] = [p for p in service["spec"]["ports"] if p["name"] == "https-webhook"]
    assert (port["port"], port["targetPort"]) == (443, 15017)
    configs = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    for webhook in [w for kind in configs for w in one(kind)["webhooks"]]:
        reference = webhook["clientConfig"]["service"]
        assert reference["name"] == service["metadata"]["name"]
        assert reference["namespace"] == service["metadata"]["namespace"]
        assert reference["port"] == 443


# A label selector evaluated as the API server does (matchLabels and matchExpressions, ANDed).
def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def webhooks_calling(namespace: str, ns_labels: dict[str, str], pod_labels: dict[str, str]) -> int:
    """How many of the mutating webhooks the API server calls for a pod CREATE."""
    labels = {**ns_labels, "kubernetes.io/metadata.name": namespace}
    return sum(
        matches(w["namespaceSelector"], labels) and matches(w["objectSelector"], pod_labels)
        for w in one("MutatingWebhookConfiguration")["webhooks"]
    )


ENABLED = {"istio-injection": "enabled"}
REVISION = {"istio.io/rev": InjectionConfig().revision}
OPT_IN = {"sidecar.istio.io/inject": "true"}
OPT_OUT = {"sidecar.istio.io/inject": "false"}


@pytest.mark.parametrize(
    ("namespace", "ns_labels", "pod_labels", "calls"),
    [
        ("shop", ENABLED, {}, 1),
        ("shop", ENABLED, OPT_IN, 1),
        ("shop", ENABLED, OPT_OUT, 0),
        ("shop", REVISION, {}, 1),
        ("shop", REVISION, OPT_OUT, 0),
        ("shop", {**ENABLED, **REVISION}, {}, 1),
        ("shop", {"istio.io/rev": "canary"}, {}, 0),
        ("shop", {"istio.io/rev": "canary"}, OPT_IN, 0),
        ("shop", {"istio-injection": "disabled"}, OPT_IN, 0),
        ("shop", {}, {}, 0),
        ("shop", {}, OPT_IN, 1),
        ("shop", {}, {"sidecar.istio.io/inject": "yes"}, 0),
        ("shop", {}, REVISION, 1),  # a pod asking for this revision, in a plain namespace
        ("shop", {}, {**REVISION, **OPT_OUT}, 0),
        ("shop", {}, {"istio.io/rev": "canary"}, 0),
        ("shop", {}, {"istio.io/rev": "canary", **OPT_IN}, 0),  # the canary's to inject
        ("shop", ENABLED, REVISION, 1),
        *[(ns, ENABLED, OPT_IN, 0) for ns in sorted(NEVER_INJECTED)],
        (InjectionConfig().mesh_namespace, ENABLED, OPT_IN, 0),
        (InjectionConfig().mesh_namespace, {}, OPT_IN, 0),
    ],
)
def test_selectors_send_each_pod_at_most_once(
    namespace: str, ns_labels: dict[str, str], pod_labels: dict[str, str], calls: int
) -> None:
    assert webhooks_calling(namespace, ns_labels, pod_labels) == calls


def test_every_entry_excludes_the_never_injected_namespaces() -> None:
    excluded = NEVER_INJECTED | {InjectionConfig().mesh_namespace}
    for webhook in one("MutatingWebhookConfiguration")["webhooks"]:
        [expression] = [
            e for e in webhook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]  # fmt: skip
        assert expression["operator"] == "NotIn"
        assert set(expression["values"]) == excluded
