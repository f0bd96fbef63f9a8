"""Fuzzing request bodies: whatever arrives, the answer is a 4xx or a well-formed review
response, never a 5xx, and the server keeps serving."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injector import InjectionConfig
from tests.webhook.conftest import RunningServer
from tests.webhook.samples import deployment_pod, pod_review
from webhook.app import create_app
from webhook.settings import WebhookSettings

JSON = {"content-type": "application/json"}
ANNOTATIONS = [
    "sidecar.istio.io/inject", "sidecar.istio.io/proxyCPU", "sidecar.istio.io/proxyMemory",
    "sidecar.istio.io/interceptionMode", "sidecar.istio.io/nativeSidecar",
    "sidecar.istio.io/rewriteAppHTTPProbers", "sidecar.istio.io/proxyImage",
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeOutboundPorts", "traffic.sidecar.istio.io/includeInboundPorts",
    "traffic.sidecar.istio.io/excludeInterfaces", "status.sidecar.istio.io/port",
    "proxy.istio.io/config",
]  # fmt: skip
REQUEST_KEYS = ["uid", "kind", "resource", "subResource", "namespace", "operation", "object",
                "dryRun", "name", "oldObject"]  # fmt: skip
POD_KEYS = ["metadata", "spec", "apiVersion", "kind"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def mutated_reviews(draw: st.DrawFn) -> bytes:
    """A real pod review with some fields replaced by arbitrary JSON, or odd annotations."""
    pod = deployment_pod()
    pod["metadata"]["annotations"] = draw(
        st.dictionaries(st.sampled_from(ANNOTATIONS), st.text(max_size=30), max_size=4)
    )
    spec_patch = draw(st.dictionaries(st.sampled_from(["containers", "initContainers",
                                                       "hostNetwork", "volumes"]), json_values,
                                      max_size=1))  # fmt: skip
    pod["spec"].update(spec_patch)
    pod.update(draw(st.dictionaries(st.sampled_from(POD_KEYS), json_values, max_size=1)))
    document: dict[str, Any] = pod_review(pod)
    document["request"].update(
        draw(st.dictionaries(st.sampled_from(REQUEST_KEYS), json_values, max_size=2))
    )
    return json.dumps(document).encode()


bodies = (
    st.binary(max_size=2048)
    | json_values.map(lambda value: json.dumps(value).encode())
    | mutated_reviews()
)


def check(reply: httpx.Response, body: bytes) -> None:
    assert reply.status_code < 500, reply.text
    assert reply.status_code in (200, 400, 413, 415), reply.text
    if reply.status_code != 200:
        return
    document = json.loads(body)
    answer = reply.json()
    response = answer["response"]
    assert answer["kind"] == "AdmissionReview"
    assert response["uid"] == document["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert response["status"]["message"]
    if "patch" in response:
        assert isinstance(json.loads(base64.b64decode(response["patch"])), list)


class InProcess:
    """The app behind httpx's ASGI transport, driven from synchronous hypothesis tests."""

    def __init__(self, portal: BlockingPortal) -> None:
        self._portal = portal
        app = create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: True)
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://webhook"
        )

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self._portal.call(self._post, path, body)

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        return await self._client.post(path, content=body, headers=JSON)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


@pytest.fixture(scope="module")
def in_process() -> Iterator[InProcess]:
    with start_blocking_portal("asyncio") as portal:
        client = InProcess(portal)
        yield client
        client.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_in_process(in_process: InProcess, body: bytes) -> None:
    check(in_process.post("/inject", body), body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_validate_in_process(in_process: InProcess, body: bytes) -> None:
    check(in_process.post("/validate", body), body)


@pytest.fixture(scope="module")
def tls_client(shared_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=shared_server.url, verify=shared_server.client_context(), timeout=10
    ) as client:
        yield client


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_over_tls(tls_client: httpx.Client, body: bytes) -> None:
    check(tls_client.post("/inject", content=body, headers=JSON), body)


def test_the_server_is_still_up_after_fuzzing(
    tls_client: httpx.Client, shared_server: RunningServer
) -> None:
    assert tls_client.get("/healthz").status_code == 200
    reply = tls_client.post("/inject", content=json.dumps(pod_review()).encode(), headers=JSON)
    assert reply.json()["response"]["allowed"] is True
    metrics = tls_client.get("/metrics").text
    assert 'outcome="error"' not in metrics  # no fuzzed body hit a bug
    assert shared_server.store.ready()
