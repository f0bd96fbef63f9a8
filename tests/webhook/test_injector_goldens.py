"""The injector's golden files replayed through the webhook, as Istio replays its injection
goldens through its webhook: each workload of each golden input becomes the pod the API server
would send in an AdmissionReview (owned by what its controller would create), the app answers
in-process, and its JSON patch applied to that pod must give the golden output's pod.

Cases that set namespace labels are left out: the webhook never sees a namespace's labels (the
API server's selectors chose the pod), so it injects as for an enabled namespace, by design.

One difference is known and pinned here (`WORKLOAD_NAMES`): for a ReplicaSet manifest whose pod
template carries a `pod-template-hash`, `mizzen inject` names the workload after the ReplicaSet
as written, while the webhook, seeing a pod owned by that ReplicaSet, names its Deployment (the
ReplicaSet's name without the hash), as Istio's webhook does."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
import jsonpatch
import pytest
import yaml

from control.cli import inject_cmd
from tests.injector.test_golden import TESTDATA, WORKING_CASES, _at, _options
from tests.webhook.samples import review
from webhook.app import create_app
from webhook.settings import WebhookSettings

pytestmark = pytest.mark.anyio

REPLAYED = [
    case for case in WORKING_CASES
    if "namespaceLabels" not in (TESTDATA / f"{case}.yaml").read_text().split("\n", 1)[0]
]  # fmt: skip


def _as_created(template: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The pod the API server sends for `document`'s template: owned by what the workload's
    controller creates, named so that the workload's name is read back from it."""
    pod = copy.deepcopy(template)
    kind, name = document.get("kind"), document.get("metadata", {}).get("name")
    owner = {
        "Deployment": ("ReplicaSet", name),  # a ReplicaSet of the workload's own name
        "CronJob": ("Job", f"{name}-28000000"),  # `<cronjob>-<scheduled minute>`
    }.get(str(kind), (kind, name))
    if kind != "Pod":
        metadata = pod.setdefault("metadata", {})
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u-1",
             "controller": True}
        ]  # fmt: skip
    return pod


def _without_owner(pod: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    if "ownerReferences" not in template.get("metadata", {}):
        pod.get("metadata", {}).pop("ownerReferences", None)
    return pod


@pytest.mark.parametrize("case", REPLAYED)
async def test_the_webhook_injects_as_the_golden_says(case: str) -> None:
    text = (TESTDATA / f"{case}.yaml").read_text()
    options = _options(text)
    _, reports = inject_cmd.inject_text(text, f"{case}.yaml", options)
    originals = list(yaml.safe_load_all(text))
    golden = list(yaml.safe_load_all((TESTDATA / f"{case}.yaml.injected").read_text()))
    app = create_app(WebhookSettings(), options.config, readiness=lambda: True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
        for report in reports:
            if report.result is None:
                continue
            index = int(report.where.split("document ")[1].split()[0].rstrip(",")) - 1
            position = sum(1 for d in originals[:index] if d is not None)
            document, expected = originals[index], golden[position]
            template = _at(document, report.target)
            workload = document
            if report.target.startswith("/items/"):  # an item of a List
                workload = document["items"][int(report.target.split("/")[2])]
            pod = _as_created(template, workload)
            metadata = workload.get("metadata") or {}
            namespace = metadata.get("namespace") or options.namespace or "default"
            answer = await client.post(
                "/inject", content=json.dumps(review(pod, namespace=namespace)),
                headers={"content-type": "application/json"},
            )  # fmt: skip
            response = answer.json()["response"]
            assert response["allowed"] is True, (report.where, response)
            patch = json.loads(base64.b64decode(response["patch"])) if "patch" in response else []
            patched = _without_owner(jsonpatch.apply_patch(pod, patch), template)
            wanted = _at(expected, report.target)
            # Same pod as `mizzen inject` gives, workload name included (a ReplicaSet's pods
            # are named after its Deployment by both).
            assert patched == wanted, report.where


def test_enough_goldens_are_replayed() -> None:
    assert len(REPLAYED) >= 35
