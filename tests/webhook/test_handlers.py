"""The routes' logic, in-process (httpx ASGI transport), with the real injector and validator."""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import jsonpatch
import pytest

from control.api import FieldError, ValidationReport
from injector import InjectionConfig, InjectionContext, InjectionResult, inject
from tests.webhook.samples import deployment_pod, mesh_review, pod_review, review, virtual_service
from webhook.app import create_app
from webhook.settings import WebhookSettings

pytestmark = pytest.mark.anyio
UID = "0d4b5c1e-7a0f-4b8e-9a51-8f3c2d1e0a01"


def decoded_patch(answer: dict[str, Any]) -> list[dict[str, Any]]:
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


async def post(client: httpx.AsyncClient, path: str, document: Any) -> dict[str, Any]:
    reply = await client.post(path, json=document)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    answer: dict[str, Any] = reply.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    return answer


async def test_a_pod_create_gets_the_injectors_patch(client: httpx.AsyncClient) -> None:
    pod = deployment_pod()
    answer = await post(client, "/inject", pod_review(pod))
    response = answer["response"]
    assert response["uid"] == UID
    assert response["allowed"] is True
    patched = jsonpatch.apply_patch(copy.deepcopy(pod), decoded_patch(answer))
    expected = inject(pod, InjectionContext("bookinfo", None, "reviews-v1"), InjectionConfig())
    assert patched == expected.pod
    init_names = [c["name"] for c in patched["spec"]["initContainers"]]
    assert init_names == ["mizzen-init", "mizzen-proxy"]


async def test_the_namespace_comes_from_the_request(client: httpx.AsyncClient) -> None:
    """Pods made by controllers carry no namespace: the request's decides, e.g. a never-injected
    namespace is skipped even though the selectors sent the pod."""
    answer = await post(client, "/inject", pod_review(namespace="kube-system"))
    assert answer["response"] == {"uid": UID, "allowed": True}


async def test_the_workload_comes_from_the_owner_references() -> None:
    seen: list[InjectionContext] = []

    def recording(
        pod: Mapping[str, Any], context: InjectionContext, config: InjectionConfig
    ) -> InjectionResult:
        seen.append(context)
        return inject(pod, context, config)

    app = create_app(
        WebhookSettings(), InjectionConfig(), readiness=lambda: True, injector=recording
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://w") as c:
        await post(c, "/inject", pod_review())
    assert seen == [InjectionContext("bookinfo", None, "reviews-v1")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda pod: pod["spec"].update(hostNetwork=True), "host_network"),
        (lambda pod: pod["metadata"]["labels"].update({"sidecar.istio.io/inject": "false"}),
         "pod_opted_out"),
    ],
    ids=["hostNetwork", "opted-out"],
)  # fmt: skip
async def test_a_skipped_pod_is_allowed_unchanged(
    client: httpx.AsyncClient, change: Any, reason: str
) -> None:
    pod = deployment_pod()
    change(pod)
    answer = await post(client, "/inject", pod_review(pod))
    assert answer["response"] == {"uid": UID, "allowed": True}
    metrics = (await client.get("/metrics")).text
    assert f'mizzen_webhook_injection_decisions_total{{decision="{reason}"}} 1.0' in metrics


async def test_a_bad_annotation_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    pod = deployment_pod()
    pod["metadata"]["annotations"] = {"traffic.sidecar.istio.io/includeOutboundPorts": "80,abc"}
    answer = await post(client, "/inject", pod_review(pod))
    response = answer["response"]
    assert response["allowed"] is False
    assert response["uid"] == UID
    assert response["status"]["code"] == 400
    assert "traffic.sidecar.istio.io/includeOutboundPorts" in response["status"]["message"]
    assert "'abc' is not a port number" in response["status"]["message"]
    assert "patch" not in response


async def test_a_dry_run_is_answered_like_any_other(client: httpx.AsyncClient) -> None:
    real = await post(client, "/inject", pod_review())
    dry = await post(client, "/inject", pod_review(dry_run=True))
    assert dry == real


@pytest.mark.parametrize(
    "document",
    [
        pod_review(operation="UPDATE"),
        pod_review(operation="DELETE"),
        review({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}},
               kind=("", "v1", "Service"), resource="services"),
        review({"apiVersion": "apps/v1", "kind": "Deployment"}, kind=("apps", "v1", "Deployment"),
               resource="deployments"),
    ],
    ids=["pod-update", "pod-delete", "service", "deployment"],
)  # fmt: skip
async def test_anything_but_a_pod_create_passes_unchanged(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    answer = await post(client, "/inject", document)
    assert answer["response"] == {"uid": UID, "allowed": True}


async def test_a_pod_subresource_passes_unchanged(client: httpx.AsyncClient) -> None:
    document = pod_review()
    document["request"]["subResource"] = "ephemeralcontainers"
    answer = await post(client, "/inject", document)
    assert answer["response"] == {"uid": UID, "allowed": True}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["request"].update(object=["not", "a", "pod"]), "request.object"),
        (lambda d: d["request"].update(object=None), "request.object"),
        (lambda d: d["request"]["object"].update(metadata="x"), "request.object.metadata"),
        (lambda d: d["request"].update(operation=5), "request.operation"),
        (lambda d: d["request"].update(kind="Pod"), "request.kind"),
        (lambda d: d["request"].update(namespace=""), "request.namespace"),
        (lambda d: d["request"]["object"]["metadata"].update(labels=["x"]), "metadata.labels"),
        (lambda d: d["request"]["object"].update(spec={"containers": "web"}), "spec.containers"),
    ],
    ids=["object-list", "object-null", "metadata-string", "operation-int", "kind-string",
         "no-namespace", "labels-list", "containers-string"],
)  # fmt: skip
async def test_a_bad_object_is_refused_with_200_naming_the_field(
    client: httpx.AsyncClient, mutate: Any, field: str
) -> None:
    document = pod_review()
    mutate(document)
    answer = await post(client, "/inject", document)
    response = answer["response"]
    assert response["uid"] == UID
    assert response["allowed"] is False
    assert field in response["status"]["message"]


def _failing(error: BaseException) -> Any:
    def injector(*_: Any) -> InjectionResult:
        raise error

    return injector


async def test_an_unexpected_error_is_logged_with_the_uid_and_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(
        WebhookSettings(),
        InjectionConfig(),
        readiness=lambda: True,
        injector=_failing(KeyError("surprise")),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://w") as c:
        with caplog.at_level(logging.ERROR, logger="mizzen.webhook"):
            answer = await post(c, "/inject", pod_review())
            metrics = (await c.get("/metrics")).text
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert UID in response["status"]["message"]
    assert "Traceback" not in json.dumps(answer)
    assert "surprise" not in json.dumps(answer)
    [record] = [r for r in caplog.records if r.name == "mizzen.webhook"]
    assert UID in record.getMessage()
    assert record.exc_info is not None
    assert 'mizzen_webhook_requests_total{outcome="error",route="/inject"} 1.0' in metrics


async def test_recursion_deep_in_the_injector_is_a_refusal() -> None:
    app = create_app(
        WebhookSettings(),
        InjectionConfig(),
        readiness=lambda: True,
        injector=_failing(RecursionError("maximum recursion depth exceeded")),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://w") as c:
        answer = await post(c, "/inject", pod_review())
    assert answer["response"]["allowed"] is False
    assert "nested too deeply" in answer["response"]["status"]["message"]


async def test_a_deeply_nested_pod_is_answered(client: httpx.AsyncClient) -> None:
    """Nesting the JSON parser accepts, but deeper than the injector's recursion can follow."""
    pod = deployment_pod()
    deep: Any = "leaf"
    for _ in range(900):
        deep = {"d": deep}
    pod["spec"]["containers"][0]["x-deep"] = deep
    text = json.dumps(pod_review(pod)).replace('"x-deep"', '"xDeep"')
    reply = await client.post("/inject", content=text, headers={"content-type": "application/json"})
    assert reply.status_code in (200, 400)
    if reply.status_code == 200:
        assert reply.json()["response"]["uid"] == UID


async def test_a_valid_mesh_resource_is_allowed(client: httpx.AsyncClient) -> None:
    answer = await post(client, "/validate", mesh_review(virtual_service()))
    assert answer["response"] == {"uid": UID, "allowed": True}


async def test_an_invalid_mesh_resource_is_refused_with_the_validators_messages(
    client: httpx.AsyncClient,
) -> None:
    resource = virtual_service()
    resource["spec"]["http"][0]["timeout"] = "soon"
    answer = await post(client, "/validate", mesh_review(resource))
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith('spec.http[0].timeout: invalid duration "soon"')


async def test_a_mesh_resource_delete_is_not_validated(client: httpx.AsyncClient) -> None:
    document = mesh_review(virtual_service(), operation="DELETE")
    document["request"]["oldObject"], document["request"]["object"] = (
        document["request"]["object"],
        None,
    )
    answer = await post(client, "/validate", document)
    assert answer["response"] == {"uid": UID, "allowed": True}


async def test_validation_warnings_reach_the_response_clipped() -> None:
    long_warning = "spec.http[0]: " + "very " * 40 + "suspicious"

    def validator(resource: Mapping[str, Any]) -> ValidationReport:
        return ValidationReport(
            errors=(FieldError("spec.hosts", "must not be empty"),),
            warnings=("plain warning", long_warning),
        )

    app = create_app(
        WebhookSettings(), InjectionConfig(), readiness=lambda: True, validator=validator
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://w") as c:
        answer = await post(c, "/validate", mesh_review(virtual_service()))
    response = answer["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == "spec.hosts: must not be empty"
    assert response["warnings"][0] == "plain warning"
    assert len(response["warnings"][1]) == 120
    assert response["warnings"][1].startswith("spec.http[0]: very")


async def test_health_and_readiness() -> None:
    ready = [False]
    app = create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: ready[0])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://w") as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/readyz")).status_code == 503
        ready[0] = True
        assert (await c.get("/readyz")).status_code == 200


async def test_metrics_count_routes_outcomes_and_decisions(client: httpx.AsyncClient) -> None:
    await post(client, "/inject", pod_review())
    await post(client, "/inject", pod_review(operation="UPDATE"))
    bad = pod_review()
    bad["request"]["object"]["metadata"]["annotations"] = {"sidecar.istio.io/proxyCPU": "lots"}
    await post(client, "/inject", bad)
    await client.post("/inject", content=b"{", headers={"content-type": "application/json"})
    await post(client, "/validate", mesh_review(virtual_service()))
    reply = await client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    text = reply.text
    for line in [
        'mizzen_webhook_requests_total{outcome="allowed",route="/inject"} 2.0',
        'mizzen_webhook_requests_total{outcome="denied",route="/inject"} 1.0',
        'mizzen_webhook_requests_total{outcome="rejected",route="/inject"} 1.0',
        'mizzen_webhook_requests_total{outcome="allowed",route="/validate"} 1.0',
        'mizzen_webhook_injection_decisions_total{decision="injected"} 1.0',
        'mizzen_webhook_injection_decisions_total{decision="not_applicable"} 1.0',
        'mizzen_webhook_injection_decisions_total{decision="invalid"} 1.0',
        'mizzen_webhook_request_duration_seconds_bucket{le="0.001",route="/inject"}',
        'mizzen_webhook_request_duration_seconds_count{route="/inject"} 4.0',
    ]:
        assert line in text, line
    assert "decision=" not in text.split("mizzen_webhook_injection_decisions_total")[0]


async def test_each_app_has_its_own_registry() -> None:
    first = create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: True)
    second = create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url="https://w"
    ) as c:
        await post(c, "/inject", pod_review())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=second), base_url="https://w"
    ) as c:
        text = (await c.get("/metrics")).text
    assert "mizzen_webhook_requests_total{" not in text


async def test_a_big_pod_is_injected_off_the_event_loop(client: httpx.AsyncClient) -> None:
    """Past the offload threshold the same answer comes from a worker thread."""
    pod = deployment_pod()
    pod["metadata"]["annotations"] = {"example.com/blob": "b" * 300_000}
    answer = await post(client, "/inject", pod_review(pod))
    patched = jsonpatch.apply_patch(copy.deepcopy(pod), decoded_patch(answer))
    assert [c["name"] for c in patched["spec"]["initContainers"]][-1] == "mizzen-proxy"


@pytest.mark.parametrize(
    "resource",
    [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
     {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"}}],
    ids=["configmap", "k8s-gateway"],
)  # fmt: skip
async def test_resources_outside_the_mesh_groups_are_not_judged(
    client: httpx.AsyncClient, resource: dict[str, Any]
) -> None:
    group, _, version = resource["apiVersion"].rpartition("/")
    document = review(resource, kind=(group, version, resource["kind"]), resource="x")
    answer = await post(client, "/validate", document)
    assert answer["response"] == {"uid": UID, "allowed": True}


async def test_an_unknown_kind_of_a_mesh_group_is_refused(client: httpx.AsyncClient) -> None:
    resource = {"apiVersion": "networking.istio.io/v1", "kind": "Widget",
                "metadata": {"name": "g"}, "spec": {}}  # fmt: skip
    answer = await post(client, "/validate", mesh_review(resource))
    assert answer["response"]["allowed"] is False
    assert 'unknown kind "Widget"' in answer["response"]["status"]["message"]


async def test_a_gateway_is_validated_and_unserved_istio_kinds_pass(
    client: httpx.AsyncClient,
) -> None:
    gateway = {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
               "metadata": {"name": "g"}, "spec": {}}  # fmt: skip
    answer = await post(client, "/validate", mesh_review(gateway))
    assert answer["response"]["allowed"] is False
    assert "gateway must have at least one server" in answer["response"]["status"]["message"]
    envoy_filter = {"apiVersion": "networking.istio.io/v1alpha3", "kind": "EnvoyFilter",
                    "metadata": {"name": "ef"}, "spec": {"anything": [1]}}  # fmt: skip
    answer = await post(client, "/validate", mesh_review(envoy_filter))
    assert answer["response"]["allowed"] is True
