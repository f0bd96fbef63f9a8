"""Lifecycle hooks through the agent, end to end over real HTTP: the injector rewrites a pod's
httpGet/tcpSocket `postStart`/`preStop` hooks, the agent is configured from the environment the
injector wrote, serves its status port on loopback, and the kubelet's call (the rewritten hook's
path and port) reaches the app as the original hook."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from control.agent.admin import EnvoyAdmin
from control.agent.settings import HOOK_TIMEOUT_SECONDS, AgentSettings, SettingsError
from control.agent.status import ProxyHealth, StatusEndpoints, bind
from control.serving import HttpServer
from injector import InjectionConfig, InjectionContext, contract, inject
from tests.agent.conftest import free_port, pod_env

pytestmark = pytest.mark.anyio


class _App(BaseHTTPRequestHandler):
    """The app: records each request (path, a header, the peer) and answers per path."""

    seen: list[tuple[str, str | None, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("X-Hook"), self.client_address[0]))
        code = 500 if self.path == "/broken" else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app_port() -> Iterator[int]:
    _App.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def _pod(app_port: int, pre_stop: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1"},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "web:1",
                    "ports": [{"name": "http", "containerPort": app_port}],
                    "lifecycle": {
                        "postStart": {
                            "httpGet": {
                                "path": "/warm",
                                "port": "http",
                                "httpHeaders": [{"name": "X-Hook", "value": "start"}],
                            }
                        },
                        "preStop": pre_stop,
                    },
                }
            ]
        },
    }


def _injected_agent(pod: dict[str, Any]) -> tuple[AgentSettings, dict[str, Any]]:
    """The agent's settings from the injected proxy's env, and the injected app container."""
    result = inject(pod, InjectionContext("shop"), InjectionConfig())
    spec = result.pod["spec"]
    proxy = next(c for c in spec["initContainers"] if c["name"] == contract.PROXY_CONTAINER_NAME)
    env = {item["name"]: item["value"] for item in proxy["env"] if "value" in item}
    overrides = {
        contract.ENV_INSTANCE_IP: "127.0.0.1",
        contract.ENV_APP_PROBES: env[contract.ENV_APP_PROBES],
    }
    settings = AgentSettings.from_env(pod_env(**overrides))
    return settings, spec["containers"][0]


async def _serve(endpoints: StatusEndpoints) -> HttpServer:
    server = HttpServer(endpoints.status_app(), name="agent-status")
    server.start(bind(0))
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    return server


async def _call_hook(port: int, hook: dict[str, Any]) -> httpx.Response:
    """What the kubelet does with the rewritten hook: GET its path on its port."""
    get = hook["httpGet"]
    assert get["port"] == contract.AGENT_STATUS_PORT
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.get(f"http://127.0.0.1:{port}{get['path']}")


async def test_http_and_tcp_hooks_reach_the_app_through_the_agent(app_port: int) -> None:
    settings, container = _injected_agent(_pod(app_port, {"tcpSocket": {"port": app_port}}))
    hooks = container["lifecycle"]
    assert hooks["postStart"]["httpGet"]["path"] == "/app-lifecycle/web/poststartz"
    assert hooks["preStop"] == {
        "httpGet": {"path": "/app-lifecycle/web/prestopz", "port": 15020, "scheme": "HTTP"}
    }
    endpoints = StatusEndpoints(
        ProxyHealth(EnvoyAdmin(free_port()), lambda: True), settings.instance_ip,
        settings.app_probes,
    )  # fmt: skip
    server = await _serve(endpoints)
    port = server.port
    try:
        start = await _call_hook(port, hooks["postStart"])
        assert start.status_code == 200
        # The original hook, named port resolved, header kept, from the passthrough address.
        assert _App.seen == [("/warm", "start", "127.0.0.6")]
        stop = await _call_hook(port, hooks["preStop"])
        assert stop.status_code == 200
        assert "connected" in stop.text
        async with httpx.AsyncClient(trust_env=False) as client:
            unknown = await client.get(f"http://127.0.0.1:{port}/app-lifecycle/other/prestopz")
        assert unknown.status_code == 404
    finally:
        await server.stop()


async def test_a_failing_hook_fails_for_the_kubelet(app_port: int) -> None:
    settings, container = _injected_agent(
        _pod(app_port, {"httpGet": {"path": "/broken", "port": app_port}})
    )
    endpoints = StatusEndpoints(
        ProxyHealth(EnvoyAdmin(free_port()), lambda: True), settings.instance_ip,
        settings.app_probes,
    )  # fmt: skip
    server = await _serve(endpoints)
    port = server.port
    try:
        stop = await _call_hook(port, container["lifecycle"]["preStop"])
        assert stop.status_code == 500
        assert ("/broken", None, "127.0.0.6") in _App.seen
    finally:
        await server.stop()


def test_hooks_wait_longer_than_probes_by_default() -> None:
    env = pod_env(
        **{
            contract.ENV_APP_PROBES: (
                '{"/app-lifecycle/web/prestopz":{"httpGet":{"path":"/stop","port":8080}},'
                '"/app-health/web/readyz":{"httpGet":{"path":"/ready","port":8080}}}'
            )
        }
    )
    probes = AgentSettings.from_env(env).app_probes
    assert probes["/app-lifecycle/web/prestopz"].timeout_seconds == HOOK_TIMEOUT_SECONDS
    assert probes["/app-health/web/readyz"].timeout_seconds == 1.0


@pytest.mark.parametrize(
    "path",
    ["/app-lifecycle/web/readyz", "/app-health/web/prestopz", "/app-lifecycle//prestopz",
     "/app-lifecycle/a/b/prestopz", "/other/web/readyz"],
)  # fmt: skip
def test_the_agent_refuses_paths_the_injector_never_writes(path: str) -> None:
    env = pod_env(**{contract.ENV_APP_PROBES: f'{{"{path}":{{"tcpSocket":{{"port":80}}}}}}'})
    with pytest.raises(SettingsError, match=contract.ENV_APP_PROBES):
        AgentSettings.from_env(env)
