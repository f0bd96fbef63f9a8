"""The agent against the real control plane, in a pod's network namespace: readiness follows
Envoy's config, and SIGTERM drains (readiness drops at once, traffic still flows and is asked
to close during the drain, then Envoy and the agent exit)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from control.cli.demo import sample
from control.cli.demo.mesh import (
    XDS_PORT,
    SidecarPod,
    start_backend,
    start_control_plane,
    start_sidecar,
    stream_requests,
    wait_ready,
)
from injector import contract
from tests.agent.conftest import comm_of
from tests.harness.netns import Pod, Topology

pytestmark = [pytest.mark.netns, pytest.mark.envoy]
URL = f"http://{sample.SERVICE_IP}:{sample.SERVICE_PORT}"
_READINESS = f"http://127.0.0.1:{contract.READINESS_PORT}{contract.READINESS_PATH}"
_GET = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    r = urllib.request.urlopen(sys.argv[1], timeout=2); print(r.status, r.read().decode())\n"
    "except urllib.error.HTTPError as e: print(e.code, e.read().decode())\n"
    "except OSError as e: print(0, type(e).__name__)\n"
)


def readiness(pod: Pod) -> tuple[int, str]:
    out = pod.run([sys.executable, "-c", _GET, _READINESS]).stdout.strip()
    code, _, reason = out.partition(" ")
    return int(code), reason.strip()


@dataclass
class Pods:
    topology: Topology
    client: Pod
    config_dir: Path
    logs: Path
    handles: list[IO[str]] = field(default_factory=list)

    def log(self, name: str) -> IO[str]:
        handle = (self.logs / name).open("a")
        self.handles.append(handle)
        return handle

    def start_agent(self, drain: float = 1.0) -> subprocess.Popen[str]:
        identity = SidecarPod(sample.NAMESPACE, sample.CLIENT_LABELS, "client")
        discovery = f"{self.topology.host.ip}:{XDS_PORT}"
        log = self.log("agent.log")
        return start_sidecar(self.client, identity, discovery, log, drain_duration=drain)

    def start_control_plane(self) -> subprocess.Popen[str]:
        return start_control_plane(self.topology.host, self.config_dir, self.log("control.log"))

    def logs_text(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture
def pods(topology: Topology, tmp_path: Path) -> Iterator[Pods]:
    client, v1 = topology.add_pod("client"), topology.add_pod("echo-v1")
    config_dir = tmp_path / "config"
    routing = sample.Routing(v1_weight=100, v2_weight=0)
    sample.write_config(config_dir, client.ip, v1.ip, "198.51.100.9", routing)
    start_backend(v1, "v1", sample.BACKEND_PORT)
    logs = tmp_path / "logs"
    logs.mkdir()
    pods = Pods(topology, client, config_dir, logs)
    yield pods
    topology.close()  # the processes first, then their log files
    for handle in pods.handles:
        handle.close()


def test_readiness_turns_on_when_envoy_gets_its_config(pods: Pods) -> None:
    agent = pods.start_agent()
    deadline = time.monotonic() + 15
    code, reason = readiness(pods.client)
    while "not LIVE" not in reason and time.monotonic() < deadline:
        time.sleep(0.1)  # the agent binds its ports, Envoy opens its admin API
        code, reason = readiness(pods.client)
    assert code == 503, reason
    assert "not LIVE" in reason  # Envoy waits for its first config (initial_fetch_timeout 0s)
    time.sleep(1)
    assert readiness(pods.client)[0] == 503  # and keeps waiting while no control plane answers
    pods.start_control_plane()
    try:
        wait_ready(pods.client, timeout=20)
    except Exception as error:
        raise AssertionError(f"{error}\n{pods.logs_text()}") from None
    assert readiness(pods.client) == (200, "ready")
    assert agent.poll() is None


def test_sigterm_drains_then_exits(pods: Pods) -> None:
    drain = 3.0  # long enough that the readiness check below lands inside it on a busy machine
    pods.start_control_plane()
    agent = pods.start_agent(drain=drain)
    wait_ready(pods.client, timeout=20)
    stream = stream_requests(pods.client, URL, duration=30)
    stream.wait_started()
    time.sleep(0.3)
    signalled = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    code, reason = readiness(pods.client)
    assert code == 503
    assert "draining" in reason
    assert agent.wait(timeout=drain + 10) == 0, pods.logs_text()
    exited = time.monotonic() - signalled
    results = stream.stop()
    in_drain = [r for r in results if signalled + 0.1 < r["t"] < signalled + drain - 0.2]
    assert drain <= exited < drain + 5, f"agent exited {exited:.1f}s after SIGTERM"
    assert in_drain, "no request was sent during the drain"
    assert all(r.get("status") == 200 for r in in_drain), in_drain[:3]
    assert all(r.get("close") for r in in_drain), in_drain[:3]  # Envoy asks clients to go away
    pids = pods.client.run(["ip", "netns", "pids", pods.client.netns]).stdout.split()
    assert not [pid for pid in pids if "envoy" in comm_of(int(pid))]
