"""The local mesh, start to finish: build it, send requests that show the routing, tear down."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from control.cli.demo import sample
from control.cli.demo.identity import CA_PORT, SECURE_PORT, MeshIdentity
from control.cli.demo.identity_view import secrets_table, xds_over_mtls
from control.cli.demo.mesh import (
    XDS_PORT,
    MeshError,
    TrafficSummary,
    send_requests,
    start_control_plane,
    start_sample_workloads,
    wait_ready,
)
from control.cli.demo.metrics_table import scrape_table
from control.cli.demo.netns import NetnsError, NetnsPod, Network

URL = f"http://{sample.SERVICE_IP}:{sample.SERVICE_PORT}"


def _shares(summary: TrafficSummary) -> str:
    total = max(summary.total, 1)
    parts = [f"{v} {n} ({100 * n / total:.0f}%)" for v, n in sorted(summary.versions.items())]
    others = {s: n for s, n in summary.statuses.items() if s != "200"}
    parts += [f"status {s}: {n}" for s, n in sorted(others.items())]
    if summary.errors:
        parts.append(f"errors: {summary.errors} ({summary.first_error})")
    return ", ".join(parts) or "nothing"


def _until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


def _scenario(out: TextIO, client: NetnsPod, config: Path, requests: int) -> None:
    say = out.write
    summary = send_requests(client, URL, requests)
    say(f"  {requests} requests to {URL} (80/20 split): {_shares(summary)}\n")
    peers = ", ".join(sorted(summary.peers))
    say(f"    as the backends saw them: {peers} (v2's own sidecar forwards from 127.0.0.6)\n")
    pinned = send_requests(client, URL, 20, {sample.PIN_HEADER: "v2"})
    say(f"  20 requests with `{sample.PIN_HEADER}: v2` (header match): {_shares(pinned)}\n")
    fault = send_requests(client, URL + sample.FAULT_PREFIX, 5)
    say(f"  5 requests to {sample.FAULT_PREFIX} (fault abort, status 418): {_shares(fault)}\n")
    say("  editing routing.yaml: all traffic to v2 ...\n")
    started = time.monotonic()
    sample.write_documents(
        config / sample.ROUTING_FILE, sample.Routing(v1_weight=0, v2_weight=100).documents()
    )
    moved = _until(lambda: send_requests(client, URL, 5).versions == {"v2": 5}, timeout=10)
    elapsed = time.monotonic() - started
    after = send_requests(client, URL, 50)
    verdict = f"re-routed in {elapsed:.2f}s" if moved else "NOT re-routed within 10s"
    say(f"  {verdict}; 50 requests: {_shares(after)}\n")


def _identity(out: TextIO, identity: MeshIdentity, client: NetnsPod, v2: NetnsPod) -> None:
    say = out.write
    for pod in (client, v2):
        say(f"# {pod.name}: its certificates (mizzen proxy-config secret, in the pod):\n")
        say(secrets_table(pod, f"{pod.name}.{sample.NAMESPACE}") + "\n")
        say(f"    xDS to {identity.discovery} over mutual TLS: {xds_over_mtls(pod)}\n")


def run_local_mesh(out: TextIO, requests: int = 200) -> int:
    """Builds the mesh in network namespaces, shows identity and the routing, removes
    everything."""
    say = out.write
    with tempfile.TemporaryDirectory(prefix="mizzen-demo-") as tmp:
        workdir = Path(tmp)
        config = workdir / "config"
        control_log, agent_log = workdir / "control.log", workdir / "agent.log"
        identity: MeshIdentity | None = None
        try:
            with Network() as network, control_log.open("w") as clog, agent_log.open("w") as alog:
                client = network.add_pod("client")
                v1, v2 = network.add_pod("echo-v1"), network.add_pod("echo-v2")
                sample.write_config(config, client.ip, v1.ip, v2.ip, sample.Routing())
                say(f"# pods on a bridge: client {client.ip}, echo-v1 {v1.ip}, echo-v2 {v2.ip}\n")
                identity = MeshIdentity(workdir / "ca", network.host.ip)
                start_control_plane(network.host, config, clog, identity=identity)
                say(f"# control plane on {network.host.ip}: xDS over mutual TLS :{SECURE_PORT}, "
                    f"CA :{CA_PORT} (CA in {identity.ca_dir}), plaintext xDS :{XDS_PORT}; "
                    f"config {config}\n")  # fmt: skip
                start_sample_workloads(
                    network.host, client, v1, v2, client_log=alog, v2_log=alog, identity=identity
                )
                say("# sidecars (mizzen init + mizzen agent with a token) in client and echo-v2, "
                    "waiting ...\n")  # fmt: skip
                wait_ready(client)
                wait_ready(v2)
                say("# both Envoys are ready (listeners and clusters from the control plane)\n")
                _identity(out, identity, client, v2)
                _scenario(out, client, config, requests)
                say("# istio_requests_total as the sidecars counted it (:15020):\n")
                say(scrape_table(network.host, [client, v2]) + "\n")
            say("# torn down: namespaces, processes and files removed\n")
            return 0
        except (MeshError, NetnsError, OSError, subprocess.SubprocessError) as error:
            say(f"mizzen demo: the local mesh failed: {error}\n")
            say(f"  control plane log:\n{_tail(control_log)}\n  agent log:\n{_tail(agent_log)}\n")
            return 1
        finally:
            if identity is not None:
                identity.close()
