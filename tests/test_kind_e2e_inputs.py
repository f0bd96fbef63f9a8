"""The kind end-to-end script's inputs, checked here where there is no cluster: the workflow that
runs it, the application it deploys (injected as the script expects, the Job's proxy a native
sidecar), the mesh objects it applies (accepted by the validating webhook; the invalid one refused
with the words the script looks for), the policy's principal (the client the script calls from)
and the little application itself (served, fetched, checked, echoed over loopback)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from control.cli.main import main
from injector import InjectionConfig
from tests.agent.conftest import free_port
from tests.webhook.samples import mesh_review
from webhook.app import create_app
from webhook.settings import WebhookSettings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (ROOT / "hack" / "kind-e2e.sh").read_text()
KIND = ROOT / "hack" / "kind"
WORKFLOW = ROOT / ".github" / "workflows" / "kind-e2e.yaml"


def _script_value(name: str) -> str:
    [value] = re.findall(rf'^{name}="([^"$]+)"$', SCRIPT, re.MULTILINE)
    return value


def _documents(name: str) -> list[dict[str, Any]]:
    text = (KIND / name).read_text().replace("@IMAGE@", "localhost/mizzen:e2e")
    return [d for d in yaml.safe_load_all(text) if d]


def test_the_workflow_runs_the_script_on_a_runner_with_docker() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "workflow_dispatch" in triggers
    for pattern in triggers["pull_request"]["paths"]:
        assert list(ROOT.glob(pattern.replace("**", "*"))), pattern
    [job] = workflow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")  # GitHub's hosted Ubuntu runners run Docker
    assert job["timeout-minutes"] <= 60
    runs = [step.get("run") for step in job["steps"]]
    assert runs.index("hack/setup.sh") < runs.index("hack/kind-e2e.sh")
    assert any(step.get("uses", "").startswith("helm/kind-action") for step in job["steps"])


def test_the_script_waits_for_every_deployment_the_application_has() -> None:
    waited = re.search(r"for deployment in ([a-z0-9 -]+); do\n    k -n \"\$ns\" rollout", SCRIPT)
    assert waited is not None
    deployments = {
        d["metadata"]["name"]
        for name in ("bookinfo.yaml", "client.yaml")
        for d in _documents(name)
        if d["kind"] == "Deployment"
    }
    assert set(waited.group(1).split()) == deployments
    assert {d["kind"] for d in _documents("bookinfo.yaml")} >= {"Job", "Service", "Deployment"}


def _injected(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """`mizzen inject` of the file as the webhook injects it in the script's labelled namespace."""
    path = tmp_path / name
    path.write_text((KIND / name).read_text().replace("@IMAGE@", "localhost/mizzen:e2e"))
    capsys.readouterr()
    argv = ["inject", "-f", str(path), "--namespace", _script_value("ns"),
            "--namespace-labels", "istio-injection=enabled"]  # fmt: skip
    assert main(argv) == 0
    return [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]


def test_the_application_is_injected_as_the_script_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workloads = 0
    documents = _injected("bookinfo.yaml", tmp_path, capsys)
    for document in documents + _injected("client.yaml", tmp_path, capsys):
        if document["kind"] not in ("Deployment", "Job"):
            continue
        workloads += 1
        spec = document["spec"]["template"]["spec"]
        [proxy] = [c for c in spec.get("initContainers", []) if c["name"] == "mizzen-proxy"]
        assert proxy.get("restartPolicy") == "Always", document["metadata"]["name"]  # native
        [app] = [c for c in spec["containers"] if c["name"] == "app"]
        # The apps' traffic is redirected: they must not run as the proxy's uid.
        assert spec["securityContext"]["runAsUser"] != InjectionConfig().proxy_uid
        if "readinessProbe" in app and "httpGet" in app["readinessProbe"]:
            assert app["readinessProbe"]["httpGet"]["port"] == 15020  # asked of the agent
    assert workloads == 7


def _review(obj: dict[str, Any]) -> dict[str, Any]:
    """The validating webhook's answer (the app `mizzen control` serves), in process."""
    app = create_app(WebhookSettings(), InjectionConfig(), readiness=lambda: True)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
            return await client.post("/validate", json=mesh_review(obj))

    answer = asyncio.run(post())
    assert answer.status_code == 200
    response: dict[str, Any] = answer.json()["response"]
    return response


@pytest.mark.parametrize("name", ["mesh.yaml", "policy.yaml"])
def test_the_mesh_objects_are_admitted(name: str) -> None:
    for obj in _documents(name):
        assert _review(obj)["allowed"] is True, obj["metadata"]["name"]


def test_the_invalid_virtual_service_is_refused_with_the_words_the_script_expects() -> None:
    [obj] = _documents("invalid-virtualservice.yaml")
    [expected] = re.findall(r'grep -q "([^"]+)" <<<"\$refused"', SCRIPT)
    response = _review(obj)
    assert response["allowed"] is False
    assert expected in response["status"]["message"]
    # The CRD's schema accepts it (kubectl's client-side checks and the API server's schema
    # pass it on): the refusal is the webhook's semantic check, as the script asserts.
    crd = yaml.safe_load((ROOT / "manifests/crds/networking.istio.io_virtualservices.yaml")
                         .read_text())  # fmt: skip
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == obj["apiVersion"][-2:]]
    jsonschema.validate({"spec": obj["spec"]}, version["schema"]["openAPIV3Schema"])


def test_the_policy_names_the_client_the_script_calls_from() -> None:
    policy = next(d for d in _documents("policy.yaml") if d["kind"] == "AuthorizationPolicy")
    [rule] = policy["spec"]["rules"]
    [source] = rule["from"]
    [client] = [d for d in _documents("client.yaml") if d["kind"] == "Deployment"]
    account = client["spec"]["template"]["spec"]["serviceAccountName"]
    assert source["source"]["principals"] == [
        f"cluster.local/ns/{_script_value('ns')}/sa/{account}"
    ]
    assert policy["spec"]["selector"]["matchLabels"] == {"app": "ratings"}
    [mtls] = [d for d in _documents("policy.yaml") if d["kind"] == "PeerAuthentication"]
    assert mtls["spec"]["mtls"]["mode"] == "STRICT"


def _app(*args: str) -> list[str]:
    return [sys.executable, str(KIND / "app.py"), *args]


@pytest.fixture
def served() -> Iterator[tuple[int, int]]:
    """The application's HTTP and TCP servers on loopback."""
    http_port, tcp_port = free_port(), free_port()
    processes = [subprocess.Popen(_app("http", "reviews", "v2", str(http_port))),
                 subprocess.Popen(_app("tcp", str(tcp_port)))]  # fmt: skip
    try:
        for port in (http_port, tcp_port):
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"port {port} never opened"
                    time.sleep(0.05)
        yield http_port, tcp_port
    finally:
        for process in processes:
            process.kill()
            process.wait()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_app(*args), capture_output=True, text=True, timeout=60, check=False)


def test_the_application_serves_fetches_checks_and_echoes(served: tuple[int, int]) -> None:
    http_port, tcp_port = served
    url = f"http://127.0.0.1:{http_port}/healthz"
    fetched = _run("fetch", url, "3")
    assert json.loads(fetched.stdout) == {"versions": {"v2": 3}, "failed": 0}
    assert _run("check", url, "2").returncode == 0
    closed = f"http://127.0.0.1:{free_port()}/"
    refused = _run("check", closed, "2")
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {"versions": {}, "failed": 2}
    soaked = json.loads(_run("soak", url, "0.3").stdout)
    assert soaked["ok"] > 0
    assert soaked["failed"] == 0
    assert _run("echo", "127.0.0.1", str(tcp_port)).returncode == 0
