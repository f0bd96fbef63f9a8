"""200 reviews at once over real TLS: every one answered, and answered for its own pod."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import anyio
import httpx
import jsonpatch
import pytest

from tests.webhook.conftest import RunningServer
from tests.webhook.samples import deployment_pod, mesh_review, pod_review, virtual_service

pytestmark = pytest.mark.anyio
JSON = {"content-type": "application/json"}


async def test_200_concurrent_reviews(tls_server: RunningServer) -> None:
    pods = {}
    for index in range(200):
        pod = deployment_pod(f"app{index}-v1")
        if index % 10 == 3:  # some opt out, some are refused
            pod["metadata"]["labels"]["sidecar.istio.io/inject"] = "false"
        if index % 10 == 7:
            pod["metadata"]["annotations"] = {"sidecar.istio.io/proxyCPU": f"{index} cores"}
        pods[f"uid-{index:03d}"] = pod
    answers: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)

    async with httpx.AsyncClient(
        base_url=tls_server.url, verify=tls_server.client_context(), limits=limits, timeout=30
    ) as client:

        async def one(uid: str, pod: dict[str, Any]) -> None:
            reply = await client.post("/inject", json=pod_review(pod, uid=uid))
            assert reply.status_code == 200
            answers[uid] = reply.json()["response"]

        async def validation(index: int) -> None:
            reply = await client.post(
                "/validate", json=mesh_review(virtual_service(), uid=f"vs-{index}")
            )
            assert reply.json()["response"] == {"uid": f"vs-{index}", "allowed": True}

        async with anyio.create_task_group() as group:
            for uid, pod in pods.items():
                group.start_soon(one, uid, pod)
            for index in range(20):
                group.start_soon(validation, index)

    assert sorted(answers) == sorted(pods)
    for uid, response in answers.items():
        index = int(uid.removeprefix("uid-"))
        assert response["uid"] == uid
        if index % 10 == 3:
            assert response == {"uid": uid, "allowed": True}
        elif index % 10 == 7:
            assert response["allowed"] is False
            assert f"'{index} cores'" in response["status"]["message"]
        else:
            patch = json.loads(base64.b64decode(response["patch"]))
            patched = jsonpatch.apply_patch(copy.deepcopy(pods[uid]), patch)
            labels = patched["metadata"]["labels"]
            assert labels["service.istio.io/canonical-name"] == f"app{index}"
            assert patched["spec"]["initContainers"][-1]["name"] == "mizzen-proxy"
