"""Revisions side by side (Istio's canary upgrade): two installs in one namespace share only what
must be shared, and every pod and mesh object is sent to at most one of them, the one its labels
ask for."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from tests.install.rendered import one, rendered
from tests.webhook.test_manifests import matches

DEFAULT = rendered()
CANARY = rendered(revision="canary")
SHARED = {"Namespace", "CustomResourceDefinition"}


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def test_names_do_not_collide_and_shared_objects_agree() -> None:
    default = {_key(o): o for o in DEFAULT}
    canary = {_key(o): o for o in CANARY}
    both = default.keys() & canary.keys()
    assert {kind for kind, _, _ in both} <= SHARED
    for key in both:
        assert default[key] == canary[key], f"{key} differs between revisions"
    assert one(CANARY, "Deployment")["metadata"]["name"] == "mizzen-canary"


def test_each_revision_selects_its_own_pods_and_service() -> None:
    for objects, revision, service in ((DEFAULT, "default", "mizzen"),
                                       (CANARY, "canary", "mizzen-canary")):  # fmt: skip
        deployment = one(objects, "Deployment")
        assert deployment["spec"]["selector"]["matchLabels"]["istio.io/rev"] == revision
        assert one(objects, "Service")["spec"]["selector"]["istio.io/rev"] == revision
        assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"][
            "istio.io/rev"] == revision  # fmt: skip
        for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for webhook in one(objects, kind)["webhooks"]:
                assert webhook["clientConfig"]["service"]["name"] == service


NAMESPACE_LABELS = [
    {}, {"istio-injection": "enabled"}, {"istio-injection": "disabled"},
    {"istio.io/rev": "default"}, {"istio.io/rev": "canary"}, {"istio.io/rev": "other"},
    {"istio-injection": "enabled", "istio.io/rev": "canary"},
]  # fmt: skip
POD_LABELS = [
    {}, {"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"},
    {"istio.io/rev": "canary"}, {"istio.io/rev": "default"},
    {"istio.io/rev": "canary", "sidecar.istio.io/inject": "false"},
    {"istio.io/rev": "canary", "sidecar.istio.io/inject": "true"},
]  # fmt: skip


def _injectors(ns_labels: dict[str, str], pod_labels: dict[str, str]) -> list[str]:
    """Which revisions' mutating webhooks the API server calls for this pod."""
    labels = {**ns_labels, "kubernetes.io/metadata.name": "shop"}
    called = []
    for revision, objects in (("default", DEFAULT), ("canary", CANARY)):
        for webhook in one(objects, "MutatingWebhookConfiguration")["webhooks"]:
            if matches(webhook["namespaceSelector"], labels) and matches(
                webhook["objectSelector"], pod_labels
            ):
                called.append(revision)
    return called


def _expected(ns: dict[str, str], pod: dict[str, str]) -> str | None:
    """Istio's rules: the namespace decides if it is labelled, else the pod."""
    if pod.get("sidecar.istio.io/inject") == "false":
        return None
    if "istio-injection" in ns:
        return "default" if ns["istio-injection"] == "enabled" else None
    if "istio.io/rev" in ns:
        return ns["istio.io/rev"] if ns["istio.io/rev"] in ("default", "canary") else None
    if "istio.io/rev" in pod:
        return pod["istio.io/rev"]
    return "default" if pod.get("sidecar.istio.io/inject") == "true" else None


@pytest.mark.parametrize(
    ("ns_labels", "pod_labels"), list(itertools.product(NAMESPACE_LABELS, POD_LABELS))
)
def test_each_pod_goes_to_at_most_one_revision_the_one_asked_for(
    ns_labels: dict[str, str], pod_labels: dict[str, str]
) -> None:
    called = _injectors(ns_labels, pod_labels)
    assert len(called) <= 1, called
    assert (called[0] if called else None) == _expected(ns_labels, pod_labels)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [({}, ["default"]), ({"istio.io/rev": "default"}, ["default"]),
     ({"istio.io/rev": "canary"}, ["canary"]), ({"istio.io/rev": "other"}, [])],
)  # fmt: skip
def test_each_mesh_object_is_validated_by_one_revision(
    labels: dict[str, str], expected: list[str]
) -> None:
    judged = [
        revision
        for revision, objects in (("default", DEFAULT), ("canary", CANARY))
        for webhook in one(objects, "ValidatingWebhookConfiguration")["webhooks"]
        if matches(webhook["objectSelector"], labels)
    ]
    assert judged == expected
