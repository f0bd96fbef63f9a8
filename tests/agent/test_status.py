"""The status endpoints: readiness reasons, and the app's probes run on the kubelet's behalf
against a real HTTP server (through the passthrough source address 127.0.0.6)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import httpx
import pytest

from control.agent.admin import EnvoyAdmin, parse_stats, readiness_from
from control.agent.probes import _health_request, _health_status, run_probe
from control.agent.settings import AppProbe
from control.agent.status import ProxyHealth, StatusEndpoints, bind
from tests.agent.conftest import free_port

pytestmark = pytest.mark.anyio


class _App(BaseHTTPRequestHandler):
    peers: list[str] = []

    def do_GET(self) -> None:
        type(self).peers.append(self.client_address[0])
        code = {"/ok": 200, "/moved": 302, "/fail": 500}.get(self.path, 404)
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def _probe(spec: dict[str, object]) -> AppProbe:
    return AppProbe.model_validate(spec)


@pytest.mark.parametrize(
    ("path", "ok", "status"),
    [("/ok", True, 200), ("/moved", True, 200), ("/fail", False, 500), ("/nope", False, 404)],
)
async def test_http_probe_passes_on_2xx_and_3xx(
    app_port: int, path: str, ok: bool, status: int
) -> None:
    result = await run_probe(_probe({"httpGet": {"path": path, "port": app_port}}), "127.0.0.1")
    assert (result.ok, result.status) == (ok, status)


async def test_probes_of_the_pods_own_ip_come_from_the_passthrough_address(app_port: int) -> None:
    _App.peers.clear()
    await run_probe(_probe({"httpGet": {"path": "/ok", "port": app_port}}), "127.0.0.1")
    assert _App.peers == ["127.0.0.6"]


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


async def test_an_ipv6_pod_is_probed_at_its_own_address() -> None:
    """No 127.0.0.6 towards an IPv6 address: the probe must still reach the app."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server = _V6Server(("::1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        spec: dict[str, object] = {"httpGet": {"path": "/ok", "port": server.server_address[1]}}
        http = await run_probe(_probe(spec), "::1")
        tcp = await run_probe(_probe({"tcpSocket": {"port": server.server_address[1]}}), "::1")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (http.ok, tcp.ok) == (True, True), (http.detail, tcp.detail)


async def test_tcp_probe(app_port: int) -> None:
    up = await run_probe(_probe({"tcpSocket": {"port": app_port}}), "127.0.0.1")
    down = await run_probe(_probe({"tcpSocket": {"port": free_port()}}), "127.0.0.1")
    assert (up.ok, down.ok) == (True, False)


def test_grpc_health_messages_are_encoded_as_protobuf() -> None:
    assert _health_request(None) == b""
    assert _health_request("shop.Cart") == b"\x0a\x09shop.Cart"
    assert _health_request("s" * 200)[:3] == b"\x0a\xc8\x01"
    assert _health_status(b"\x08\x01") == 1
    assert _health_status(b"") == 0


async def test_grpc_probe_against_a_real_grpc_server() -> None:
    """A gRPC server answering grpc.health.v1.Health/Check: SERVING for "", NOT_SERVING else."""

    async def check(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return b"\x08\x01" if request == b"" else b"\x08\x02"

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        serving = await run_probe(_probe({"grpc": {"port": port}}), "127.0.0.1")
        other = await run_probe(_probe({"grpc": {"port": port, "service": "x"}}), "127.0.0.1")
        down = await run_probe(_probe({"grpc": {"port": free_port()}}), "127.0.0.1")
    finally:
        await server.stop(None)
    assert (serving.ok, other.ok, down.ok) == (True, False, False)


def _endpoints(app_port: int, running: bool) -> StatusEndpoints:
    probes = {
        "/app-health/web/readyz": _probe({"httpGet": {"path": "/ok", "port": app_port}}),
        "/app-health/web/livez": _probe({"httpGet": {"path": "/fail", "port": app_port}}),
    }
    health = ProxyHealth(EnvoyAdmin(free_port()), lambda: running)
    return StatusEndpoints(health, "127.0.0.1", probes)


async def test_status_server_forwards_app_health(app_port: int) -> None:
    app = _endpoints(app_port, running=True).status_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        assert (await client.get("/app-health/web/readyz")).status_code == 200
        assert (await client.get("/app-health/web/livez")).status_code == 500
        assert (await client.get("/app-health/other/livez")).status_code == 404
        ready = await client.get("/healthz/ready")
    assert ready.status_code == 503
    assert "admin unreachable" in ready.text


async def test_readiness_says_why(app_port: int) -> None:
    endpoints = _endpoints(app_port, running=False)
    transport = httpx.ASGITransport(app=endpoints.readiness_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        stopped = await client.get("/healthz/ready")
        endpoints.health.draining = True
        draining = await client.get("/healthz/ready")
    assert (stopped.status_code, stopped.text.strip()) == (503, "Envoy is not running")
    assert draining.status_code == 503
    assert "draining" in draining.text


@pytest.mark.parametrize(
    ("state", "stats", "ready", "words"),
    [
        ("PRE_INITIALIZING", {}, False, "not LIVE"),
        ("LIVE", {"listener_manager.workers_started": 0}, False, "workers"),
        ("LIVE", {"listener_manager.workers_started": 1}, False, "CDS"),
        ("LIVE", {"listener_manager.workers_started": 1, "cluster_manager.cds.update_success": 1},
         False, "LDS"),
        ("LIVE", {"listener_manager.workers_started": 1, "cluster_manager.cds.update_success": 1,
                  "listener_manager.lds.update_success": 2}, True, "ready"),
    ],
)  # fmt: skip
def test_readiness_rule(state: str, stats: dict[str, int], ready: bool, words: str) -> None:
    result = readiness_from(state, stats)
    assert result.ready is ready
    assert words in result.reason


def test_stats_parsing_skips_histograms() -> None:
    text = "a.b: 3\nserver.state: 0\nh.x: P0(nan,1) P25(nan,2)\nbad line\n"
    assert parse_stats(text) == {"a.b": 3, "server.state": 0}


def _connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("ipv6", [False, True])
def test_the_health_ports_listen_on_the_pods_address_family(ipv6: bool) -> None:
    """The kubelet probes the pod's IP: an IPv6 pod must answer on IPv6 (and on IPv4 too when
    the kernel can share one socket)."""
    if ipv6 and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with bind(0, ipv6=ipv6) as server:
        port = server.getsockname()[1]
        assert _connects("127.0.0.1", port) is (not ipv6 or socket.has_dualstack_ipv6())
        assert _connects("::1", port) is ipv6


class _Admin(BaseHTTPRequestHandler):
    """Envoy's admin as the agent reads it: LIVE, configured."""

    def do_GET(self) -> None:
        body = b"LIVE\n"
        if self.path.startswith("/stats"):
            body = (
                b"listener_manager.workers_started: 1\n"
                b"cluster_manager.cds.update_success: 1\nlistener_manager.lds.update_success: 1\n"
            )
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_admin_calls_ignore_a_proxy_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Admin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    admin = EnvoyAdmin(server.server_address[1])
    try:
        readiness = await admin.readiness()
    finally:
        await admin.aclose()
        server.shutdown()
        server.server_close()
        thread.join()
    assert (readiness.ready, readiness.reason) == (True, "ready")
