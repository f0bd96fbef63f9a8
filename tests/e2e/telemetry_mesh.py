"""The telemetry tests' mesh, once for the e2e package, on the harness's network namespaces: the
control plane in the bridge's namespace (with the mesh's telemetry settings: access logs to
stdout, OpenTelemetry tracing to a receiver in this process), a `client` pod and an `echo-v1`
pod with sidecars, a `dead-v1` pod that serves nothing, and a real Prometheus scraping the
sidecars' merged metrics (:15020) and the control plane (:15014) every second.

Services: `echo` (HTTP, port 80 -> 8080; `/fault` aborts with 418), `tcp-echo` (TCP, 9000,
the same pod), `dead` (HTTP, port 80 -> a pod where nothing listens: 503)."""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from control.cli.demo.mesh import (
    SidecarPod,
    mizzen,
    run_in,
    send_requests,
    start_sidecar,
    wait_ready,
)
from injector import contract
from tests.e2e.otlp import OtlpReceiver
from tests.e2e.prometheus import Prometheus, prometheus_binary
from tests.harness.netns import Pod, Topology

NAMESPACE = "demo"
ECHO_IP, TCP_IP, DEAD_IP = "198.19.255.20", "198.19.255.21", "198.19.255.22"
ECHO_HOST = f"echo.{NAMESPACE}.svc.cluster.local"
TCP_HOST = f"tcp-echo.{NAMESPACE}.svc.cluster.local"
DEAD_HOST = f"dead.{NAMESPACE}.svc.cluster.local"
HTTP_PORT, TCP_PORT, FAULT_STATUS = 8080, 9000, 418
CLIENT_LABELS = {"app": "client", "version": "v1"}
ECHO_LABELS = {"app": "echo", "version": "v1"}
APP = Path(__file__).with_name("telemetry_app.py")
# The traffic `send_traffic` sends, which the tests count.
OK, FAULTS, DEAD, SPOOFED, ERRORS = 20, 7, 5, 4, 3
APP_ERROR = 500  # what the app answers ERRORS requests with
TCP_CONNECTIONS, TCP_BYTES = 3, 1000
SPOOF = "evil;demo;evil;v9;evil;v9;Kubernetes;evil"  # what a client app claims in x-mizzen-peer
_TCP_CLIENT = (
    "import socket, sys\n"
    "for _ in range(int(sys.argv[3])):\n"
    "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
    "    payload = b'x' * int(sys.argv[4]); s.sendall(payload); got = b''\n"
    "    while len(got) < len(payload): got += s.recv(65536)\n"
    "    s.close()\n"
)


def _pod(name: str, ip: str, labels: dict[str, str], account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {"serviceAccountName": account, "containers": [{"name": "app", "image": "x"}]},
        "status": {"phase": "Running", "podIP": ip},
    }  # fmt: skip


def _service(name: str, ip: str, selector: dict[str, str], port: int, target: int,
             port_name: str) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"clusterIP": ip, "selector": selector,
                 "ports": [{"name": port_name, "port": port, "targetPort": target}]},
    }  # fmt: skip


def documents(client: str, echo: str, dead: str) -> list[dict[str, Any]]:
    fault = {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "echo", "namespace": NAMESPACE},
        "spec": {"hosts": [ECHO_HOST], "http": [
            {"match": [{"uri": {"prefix": "/fault"}}],
             "fault": {"abort": {"httpStatus": FAULT_STATUS, "percentage": {"value": 100}}},
             "route": [{"destination": {"host": ECHO_HOST}}]},
            {"route": [{"destination": {"host": ECHO_HOST}}]},
        ]},
    }  # fmt: skip
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _service("echo", ECHO_IP, {"app": "echo"}, 80, HTTP_PORT, "http"),
        _service("tcp-echo", TCP_IP, {"app": "echo"}, TCP_PORT, TCP_PORT, "tcp"),
        _service("dead", DEAD_IP, {"app": "dead"}, 80, HTTP_PORT, "http"),
        _pod("client", client, CLIENT_LABELS, "client"),
        _pod("echo-v1", echo, ECHO_LABELS, "echo"),
        _pod("dead-v1", dead, {"app": "dead", "version": "v1"}, "dead"),
        fault,
    ]


def mesh_config(collector: str, port: int) -> dict[str, Any]:
    return {
        "accessLogFile": "/dev/stdout",
        "accessLogEncoding": "TEXT",
        "extensionProviders": [
            {"name": "otel", "opentelemetry": {"service": collector, "port": port}}
        ],
        "defaultProviders": {"tracing": ["otel"]},
        "defaultConfig": {"tracing": {"sampling": 100}},
    }


@dataclass
class TelemetryMesh:
    topology: Topology
    client: Pod
    echo: Pod
    logs: Path
    config_dir: Path
    prometheus: Prometheus
    traces: OtlpReceiver
    _handles: list[IO[str]] = field(default_factory=list)

    def log_text(self, name: str) -> str:
        return (self.logs / name).read_text(errors="replace")

    def diagnostics(self) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)


def _start_app(pod: Pod) -> None:
    process = pod.popen([sys.executable, str(APP), str(HTTP_PORT), str(TCP_PORT)],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    if not ready or process.stdout.readline().strip() != "READY":
        process.kill()
        raise AssertionError(f"the test app in {pod.name} did not start")


@pytest.fixture(scope="package")  # gone before other packages' tests sweep namespaces
def telemetry_mesh(
    netns_session: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TelemetryMesh]:
    if prometheus_binary() is None:
        pytest.fail("the `prometheus` binary is missing: hack/setup.sh installs it (as root)")
    workdir = tmp_path_factory.mktemp("telemetry")
    logs = workdir / "logs"
    logs.mkdir()
    handles: list[IO[str]] = []

    def log(name: str) -> IO[str]:
        handle = (logs / name).open("a")
        handles.append(handle)
        return handle

    try:
        with Topology(ipv6=False) as topology, OtlpReceiver() as traces:
            collector = topology.uplink()
            client, echo = topology.add_pod("client"), topology.add_pod("echo-v1")
            dead = topology.add_pod("dead-v1")
            config_dir = workdir / "config"
            config_dir.mkdir()
            (config_dir / "mesh.yaml").write_text(
                yaml.safe_dump_all(documents(client.ip, echo.ip, dead.ip))
            )
            mesh_file = workdir / "meshconfig.yaml"
            mesh_file.write_text(yaml.safe_dump(mesh_config(collector, traces.port)))
            topology.host.popen(
                mizzen("control", "--config-dir", str(config_dir), "--mesh-config", str(mesh_file),
                       "--xds-address", "::", "--xds-port", "15010", "--debug-port", "15014"),
                stdout=log("control.log"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            _start_app(echo)
            discovery = f"{topology.host.ip}:15010"
            start_sidecar(client, SidecarPod(NAMESPACE, CLIENT_LABELS, "client"), discovery,
                          log("client.log"))  # fmt: skip
            app_scrape = json.dumps({"scrape": "true", "port": str(HTTP_PORT), "path": "/metrics"})
            app_env = {contract.ENV_PROMETHEUS_ANNOTATIONS: app_scrape}
            start_sidecar(echo, SidecarPod(NAMESPACE, ECHO_LABELS, "echo"), discovery,
                          log("echo.log"), base_env=app_env)  # fmt: skip
            prometheus = Prometheus(topology.host, workdir / "prometheus", {
                "sidecars": ["/stats/prometheus", f"{client.ip}:15020", f"{echo.ip}:15020"],
                "control-plane": ["/metrics", "127.0.0.1:15014"],
            })  # fmt: skip
            mesh = TelemetryMesh(
                topology, client, echo, logs, config_dir, prometheus, traces, handles
            )
            try:
                try:
                    wait_ready(client, timeout=30)
                    wait_ready(echo, timeout=30)
                    prometheus.wait_ready()
                except Exception as error:
                    raise AssertionError(f"{error}\n{mesh.diagnostics()}") from None
                yield mesh
            finally:
                prometheus.close()
    finally:
        for handle in handles:
            handle.close()


def send_traffic(mesh: TelemetryMesh, tag: str) -> None:
    """From the client: OK requests to echo (200), FAULTS to /fault (418 from the client's
    sidecar; the path is /fault/<tag>, so access log lines tell rounds apart), DEAD to the dead
    service (503), SPOOFED carrying a forged peer header (200), ERRORS the app answers with 500,
    and TCP_CONNECTIONS echo connections of TCP_BYTES each."""
    client = mesh.client
    ok = send_requests(client, f"http://{ECHO_IP}/", OK)
    assert ok.statuses == {"200": OK}, (ok, mesh.diagnostics())
    fault = send_requests(client, f"http://{ECHO_IP}/fault/{tag}", FAULTS)
    assert fault.statuses == {str(FAULT_STATUS): FAULTS}
    dead = send_requests(client, f"http://{DEAD_IP}/", DEAD)
    assert dead.statuses == {"503": DEAD}
    spoofed = send_requests(client, f"http://{ECHO_IP}/", SPOOFED, {"x-mizzen-peer": SPOOF})
    assert spoofed.statuses == {"200": SPOOFED}
    errors = send_requests(client, f"http://{ECHO_IP}/code/{APP_ERROR}", ERRORS)
    assert errors.statuses == {str(APP_ERROR): ERRORS}
    argv = [sys.executable, "-c", _TCP_CLIENT, TCP_IP, str(TCP_PORT), str(TCP_CONNECTIONS),
            str(TCP_BYTES)]  # fmt: skip
    run_in(client, argv)
