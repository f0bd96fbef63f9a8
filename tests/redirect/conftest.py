"""Fixtures of the redirect tests: a pod with the mesh's listeners, its peers, `mizzen init`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.harness.netns import HarnessError, Pod, Topology

# What `app` listens on: the app's own ports, the agent's status port, Envoy's capture ports.
APP_LISTENERS = {8080: "app", 9000: "app", 15020: "agent", 15001: "outbound", 15006: "inbound"}
PEER_PORTS = (8080, 9000)


@pytest.fixture(scope="session")
def iptables() -> None:
    if not any(shutil.which(t) for t in ("iptables-nft-restore", "iptables-legacy-restore")):
        pytest.skip("needs iptables (iptables-nft-restore or iptables-legacy-restore)")


@dataclass
class Mesh:
    """`app` gets the redirect; `peer` and `other` are plain pods listening on 8080 and 9000."""

    topology: Topology
    app: Pod
    peer: Pod
    other: Pod

    def init(self, *flags: str, pod: Pod | None = None) -> subprocess.CompletedProcess[str]:
        """Runs the real `mizzen init` in the pod's netns; fails the test unless it succeeds."""
        done = (pod or self.app).run(
            [sys.executable, "-m", "control.cli", "init", *flags], check=False
        )
        assert done.returncode == 0, f"mizzen init {' '.join(flags)}: {done.stderr}"
        return done

    def rules(self, tool: str = "iptables-nft-save", pod: Pod | None = None) -> list[str]:
        """The mesh's rule lines (`-A`) in the pod's nat table, as the backend saves them."""
        saved = (pod or self.app).run([tool, "-t", "nat"]).stdout
        return [line for line in saved.splitlines() if line.startswith("-A") and "MIZZEN" in line]


def where(
    pod: Pod,
    host: str,
    port: int,
    *,
    uid: int | None = None,
    gid: int | None = None,
    source: str | None = None,
) -> str:
    """`label:port` of the listener that accepted the connection (e.g. "outbound:15001")."""
    try:
        got = pod.connect(host, port, uid=uid, gid=gid, source=source)
    except HarnessError as error:
        return f"failed: {error}"
    return f"{got.label}:{got.port}"


@pytest.fixture
def mesh(topology: Topology, iptables: None) -> Mesh:
    app, peer, other = (topology.add_pod(name) for name in ("app", "peer", "other"))
    app.serve(APP_LISTENERS)
    for pod in (peer, other):
        pod.serve(dict.fromkeys(PEER_PORTS, pod.name))
    return Mesh(topology, app, peer, other)
