"""One mesh per module, on the harness's network namespaces: the control plane in the bridge's
namespace, two backends (v1 plain, v2 with its own sidecar), and a client pod with the redirect
and the agent (as root, starting Envoy as uid 1337), built by the same code as `mizzen demo`
(`control.cli.demo.mesh`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from control.cli.demo import sample
from control.cli.demo.mesh import (
    TrafficSummary,
    send_requests,
    start_control_plane,
    start_sample_workloads,
    wait_ready,
)
from tests.harness.netns import Pod, Topology

URL = f"http://{sample.SERVICE_IP}:{sample.SERVICE_PORT}"


@dataclass
class Mesh:
    topology: Topology
    client: Pod
    config_dir: Path
    logs: Path
    control_plane: subprocess.Popen[str] | None = None
    _open_logs: list[IO[str]] = field(default_factory=list)

    def log(self, name: str) -> IO[str]:
        handle = (self.logs / name).open("a")
        self._open_logs.append(handle)
        return handle

    def start_control_plane(self) -> None:
        self.control_plane = start_control_plane(
            self.topology.host, self.config_dir, self.log("control.log")
        )

    def kill_control_plane(self) -> None:
        assert self.control_plane is not None
        self.control_plane.kill()
        self.control_plane.wait(timeout=10)

    def set_routing(self, routing: sample.Routing) -> None:
        sample.write_documents(self.config_dir / sample.ROUTING_FILE, routing.documents())

    def requests(self, count: int, path: str = "", **headers: str) -> TrafficSummary:
        return send_requests(self.client, URL + path, count, headers)

    def converge(self, check: Callable[[TrafficSummary], bool], timeout: float = 15) -> float:
        """Seconds until a probe of 5 requests satisfies `check`; fails after `timeout`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check(self.requests(5)):
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"routing did not converge within {timeout}s\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-30:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def close(self) -> None:
        for handle in self._open_logs:
            handle.close()


@pytest.fixture(scope="module")
def mesh(netns_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("mesh")
    with Topology(ipv6=False) as topology:
        client = topology.add_pod("client")
        v1, v2 = topology.add_pod("echo-v1"), topology.add_pod("echo-v2")
        config_dir = workdir / "config"
        sample.write_config(config_dir, client.ip, v1.ip, v2.ip, sample.Routing())
        logs = workdir / "logs"
        logs.mkdir()
        mesh = Mesh(topology, client, config_dir, logs)
        try:
            mesh.start_control_plane()
            start_sample_workloads(
                topology.host, client, v1, v2,
                client_log=mesh.log("agent.log"), v2_log=mesh.log("agent-v2.log"),
            )  # fmt: skip
            try:
                wait_ready(client, timeout=30)
                wait_ready(v2, timeout=30)
            except Exception as error:
                raise AssertionError(f"{error}\n{mesh.diagnostics()}") from None
            yield mesh
        finally:
            mesh.close()


from tests.e2e.mtls_mesh import mtls_mesh as mtls_mesh  # noqa: E402
from tests.e2e.telemetry_mesh import telemetry_mesh as telemetry_mesh  # noqa: E402
