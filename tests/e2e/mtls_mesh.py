"""A mesh with identities for the mTLS wire tests, on the harness's network namespaces.

In the bridge's namespace: the CA (`mizzen ca serve`) and the control plane (`mizzen control`,
plaintext xDS). Pods, as the injector would run them (redirect, then the agent as root with a
token, the CA's address and an SDS socket; Envoy as uid 1337):
- `client`: meshed (sidecar, service account `client`);
- `server`: meshed (sidecar, service account `server`), apps on 8080 and 9090;
- `plain`: no sidecar (a plaintext client, and an app on 8080).
Services: `server` (80 -> 8080, 90 -> 9090), `mixed` (80 -> 8080 of `server` and `plain`: one
injected and one plain endpoint). Policies (PeerAuthentication, DestinationRule) are written to
`security.yaml` by the tests.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from control.cli.demo import sample
from control.cli.demo.mesh import run_in, start_backend, start_control_plane, wait_ready
from control.cli.demo.standalone_ca import start_ca, start_meshed_sidecar
from injector import contract
from tests.agent.identity_env import reachable_dir
from tests.harness.netns import Pod, Topology

NAMESPACE: Final = "secure"
SERVER_VIP: Final = "198.19.255.30"
MIXED_VIP: Final = "198.19.255.31"
TLS_LABEL: Final = "security.istio.io/tlsMode"
POLICY_FILE: Final = "security.yaml"
ADMIN_PORT: Final = 15000


def spiffe(account: str) -> str:
    return f"spiffe://cluster.local/ns/{NAMESPACE}/sa/{account}"


def _pod(name: str, ip: str, labels: dict[str, str], ports: list[int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "serviceAccountName": name,
            "containers": [
                {
                    "name": "app",
                    "image": "example/app",
                    "ports": [{"containerPort": p} for p in ports],
                }
            ],
        },
        "status": {"phase": "Running", "podIP": ip},
    }


def _service(
    name: str, vip: str, selector: dict[str, str], ports: list[tuple[str, int, int]]
) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "clusterIP": vip,
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in ports],
        },
    }


MESHED: Final = {TLS_LABEL: "istio"}  # what the injector adds
SERVER_PORTS: Final = [("http", 80, 8080), ("http-alt", 90, 9090), ("tcp-echo", 70, 7070),
                       ("tls", 443, 8443)]  # fmt: skip
SERVER_POD_PORTS: Final = [8080, 9090, 7070, 8443]


def workloads(client: Pod, server: Pod, plain: Pod) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _service(
            "server",
            SERVER_VIP,
            {"app": "server"},
            [
                ("http", 80, 8080),
                ("http-alt", 90, 9090),
                ("tcp-echo", 70, 7070),
                ("tls", 443, 8443),
            ],
        ),
        _service("mixed", MIXED_VIP, {"tier": "mixed"}, [("http", 80, 8080)]),
        _pod("client", client.ip, {"app": "client", **MESHED}, []),
        _pod(
            "server",
            server.ip,
            {"app": "server", "tier": "mixed", **MESHED},
            [8080, 9090, 7070, 8443],
        ),
        _pod("plain", plain.ip, {"app": "plain", "tier": "mixed"}, [8080]),
    ]


def peer_authentication(
    name: str,
    mode: str | None,
    selector: Mapping[str, str] | None = None,
    ports: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": dict(selector)}
    if ports:
        spec["portLevelMtls"] = {str(p): {"mode": m} for p, m in ports.items()}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def destination_rule(mode: str, host: str = "server") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": host, "namespace": NAMESPACE},
        "spec": {"host": host, "trafficPolicy": {"tls": {"mode": mode}}},
    }


@dataclass
class MtlsMesh:
    topology: Topology
    client: Pod
    server: Pod
    plain: Pod
    config_dir: Path
    ca_dir: Path
    logs: Path
    _open: list[IO[str]] = field(default_factory=list)

    def log(self, name: str) -> IO[str]:
        handle = (self.logs / name).open("a")
        self._open.append(handle)
        return handle

    def set_policies(self, *documents: dict[str, Any]) -> None:
        path = self.config_dir / POLICY_FILE
        if documents:
            sample.write_documents(path, documents)
        else:
            path.unlink(missing_ok=True)

    def probe(self, pod: Pod, *args: str) -> dict[str, Any]:
        out = run_in(pod, [sys.executable, "-m", "tests.e2e.mtls_probe", *args], timeout=30)
        result: dict[str, Any] = json.loads(out)
        return result

    def get(self, pod: Pod, url: str, **headers: str) -> dict[str, Any]:
        args = [f"--header={k}:{v}" for k, v in headers.items()]
        return self.probe(pod, "get", url, *args)

    def stat(self, pod: Pod, pattern: str) -> int:
        return int(self.probe(pod, "stat", str(ADMIN_PORT), pattern)["value"])

    def until(self, check: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"not within {timeout}s: {what}\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-25:]
            parts.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    def close(self) -> None:
        for handle in self._open:
            handle.close()


TLS_APP_ID: Final = "spiffe://example.org/tls-app"
# The server's probes as the injector rewrites them: the kubelet asks the agent on 15020.
PROBES: Final = {
    contract.ENV_APP_PROBES: json.dumps(
        {
            "/app-health/app/readyz": {"httpGet": {"port": 8080, "path": "/"}},
            "/app-health/app/livez": {"tcpSocket": {"port": 9090}},
        }
    )
}


def _start_tls_app(pod: Pod, workdir: Path) -> None:
    """An app serving TLS itself on 8443 (a self-signed certificate naming TLS_APP_ID)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls-app")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(TLS_APP_ID)]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = workdir / "tls-app.pem", workdir / "tls-app.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    cmd = [sys.executable, "-m", "tests.e2e.mtls_probe", "serve-tls", "8443"]
    process = pod.popen([*cmd, str(cert_file), str(key_file)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    if not ready or process.stdout.readline().strip() != "READY":
        raise AssertionError("the TLS app did not start")


@pytest.fixture(scope="module")
def mtls_mesh(netns_session: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MtlsMesh]:
    workdir = tmp_path_factory.mktemp("mtls")
    sockets = reachable_dir()
    with Topology(ipv6=False) as topology:
        client, server, plain = (topology.add_pod(n) for n in ("client", "server", "plain"))
        config_dir = workdir / "config"
        config_dir.mkdir()
        sample.write_documents(config_dir / "workloads.yaml", workloads(client, server, plain))
        logs = workdir / "logs"
        logs.mkdir()
        mesh = MtlsMesh(topology, client, server, plain, config_dir, workdir / "ca", logs)
        try:
            start_ca(topology.host, mesh.ca_dir, mesh.log("ca.log"))
            start_control_plane(topology.host, config_dir, mesh.log("control.log"))
            start_backend(server, "server", 8080)
            start_backend(server, "server-9090", 9090)
            start_backend(server, "server-tcp", 7070)
            _start_tls_app(server, workdir)
            start_backend(plain, "plain", 8080)
            for pod, labels, env in (
                (client, {"app": "client", **MESHED}, {}),
                (server, {"app": "server", "tier": "mixed", **MESHED}, PROBES),
            ):
                start_meshed_sidecar(
                    pod, topology.host, namespace=NAMESPACE, labels=labels, account=pod.name,
                    ca_dir=mesh.ca_dir, sockets=sockets, log=mesh.log(f"agent-{pod.name}.log"),
                    extra_env=env,
                )  # fmt: skip
            try:
                wait_ready(client, timeout=60)
                wait_ready(server, timeout=60)
            except Exception as error:
                raise AssertionError(f"{error}\n{mesh.diagnostics()}") from None
            yield mesh
        finally:
            mesh.close()
            shutil.rmtree(sockets, ignore_errors=True)
