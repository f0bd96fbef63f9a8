"""One mesh per module, on the harness's network namespaces: the control plane in the bridge's
namespace, two backends (v1 plain, v2 with its own sidecar), and a client pod with the redirect
and the agent (as root, starting Envoy as uid 1337), built by the same code as `mizzen demo`
(`control.cli.demo.mesh`).

Identity is on, as in the demo (`control.cli.demo.identity`): the control plane runs the CA
(`--ca-dir`), each sidecar gets a token for its service account, its certificate from the CA
port (`CA_ADDR`), and talks xDS to the secure port over mutual TLS. For tests of their own:

    pod = mesh.add_sidecar("web", namespace="shop", service_account="web", labels={"app": "web"})
    mesh.certificate_uris(pod)      # ["spiffe://cluster.local/ns/shop/sa/web"], from Envoy's /certs
    mesh.envoy_stat(pod, "cluster.xds-grpc.ssl.handshake")

A module that wants the plaintext mesh instead sets `IDENTITY = False` at its top (the fixture
reads it).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from control.cli.demo import sample
from control.cli.demo.identity import MeshIdentity
from control.cli.demo.identity_view import envoy_admin, envoy_stat
from control.cli.demo.mesh import (
    XDS_PORT,
    SidecarPod,
    TrafficSummary,
    send_requests,
    start_control_plane,
    start_sample_workloads,
    start_sidecar,
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
    identity: MeshIdentity | None = None
    control_plane: subprocess.Popen[str] | None = None
    _open_logs: list[IO[str]] = field(default_factory=list)

    def log(self, name: str) -> IO[str]:
        handle = (self.logs / name).open("a")
        self._open_logs.append(handle)
        return handle

    def start_control_plane(self) -> None:
        self.control_plane = start_control_plane(
            self.topology.host, self.config_dir, self.log("control.log"), identity=self.identity
        )

    @property
    def discovery(self) -> str:
        """What sidecars dial: the secure port with identity, else the plaintext one."""
        if self.identity is not None:
            return self.identity.discovery
        return f"{self.topology.host.ip}:{XDS_PORT}"

    def add_sidecar(
        self,
        name: str,
        *,
        namespace: str = sample.NAMESPACE,
        service_account: str = "default",
        labels: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> Pod:
        """A new pod with the redirect and the agent (with identity when the mesh has it),
        ready (Envoy has its config). Its log: `<name>.log`."""
        pod = self.topology.add_pod(name)
        who = SidecarPod(namespace, dict(labels or {"app": name}), service_account)
        start_sidecar(pod, who, self.discovery, self.log(f"{name}.log"),
                      mesh_identity=self.identity)  # fmt: skip
        try:
            wait_ready(pod, timeout=timeout)
        except Exception as error:
            raise AssertionError(f"{error}\n{self.diagnostics()}") from None
        return pod

    def certificate_uris(self, pod: Pod) -> list[str]:
        """The distinct URI SANs of the certificates the pod's Envoy holds (its admin `/certs`
        lists a certificate once per TLS context using it: xDS, each mTLS listener and cluster)."""
        certs = json.loads(envoy_admin(pod, "/certs") or '{"certificates": []}')
        return sorted(
            {
                san["uri"]
                for entry in certs.get("certificates", [])
                for cert in entry.get("cert_chain", [])
                for san in cert.get("subject_alt_names", [])
                if "uri" in san
            }
        )

    def envoy_stat(self, pod: Pod, name: str) -> int:
        return envoy_stat(pod, name)

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
        if self.identity is not None:
            self.identity.close()


@pytest.fixture(scope="module")
def mesh(
    netns_session: None, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("mesh")
    with Topology(ipv6=False) as topology:
        client = topology.add_pod("client")
        v1, v2 = topology.add_pod("echo-v1"), topology.add_pod("echo-v2")
        config_dir = workdir / "config"
        sample.write_config(config_dir, client.ip, v1.ip, v2.ip, sample.Routing())
        logs = workdir / "logs"
        logs.mkdir()
        with_identity = getattr(request.module, "IDENTITY", True)
        identity = MeshIdentity(workdir / "ca", topology.host.ip) if with_identity else None
        mesh = Mesh(topology, client, config_dir, logs, identity)
        try:
            mesh.start_control_plane()
            start_sample_workloads(
                topology.host, client, v1, v2,
                client_log=mesh.log("agent.log"), v2_log=mesh.log("agent-v2.log"),
                identity=identity,
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
