"""Identity for the local mesh: the control plane runs the mesh CA in local mode (`--ca-dir`),
and each sidecar gets what the injector and the kubelet give a pod in a cluster: a token for
its service account (from the CA's own issuer, as `mizzen token create` makes one), the root
certificate, an SDS socket directory, `CA_ADDR` (the CA port) and the secure xDS port as its
discovery address. The agent then makes its key, gets its certificate, serves it to Envoy over
SDS, and Envoy talks xDS to the control plane over mutual TLS.

    identity = MeshIdentity.create(workdir / "ca", host_ip)
    start_control_plane(host, config, log, identity=identity)   # adds identity.control_args()
    start_sidecar(pod, sidecar, identity.discovery, log, identity=identity)
    ...
    identity.close()   # the socket directories
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from control.identity.spiffe import SpiffeId
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from injector import contract

SECURE_PORT = 15012
CA_PORT = 15013
TRUST_DOMAIN = "cluster.local"
TOKEN_TTL = timedelta(hours=12)


@dataclass
class MeshIdentity:
    ca_dir: Path
    host_ip: str
    # Sockets must be reachable by Envoy (uid 1337): their own 0755 directory under /tmp.
    sockets: Path = field(default_factory=lambda: _reachable_dir("mizzen-sds-"))

    @property
    def discovery(self) -> str:
        return f"{self.host_ip}:{SECURE_PORT}"

    @property
    def ca_port(self) -> int:
        return CA_PORT

    @property
    def root_cert(self) -> Path:
        return self.ca_dir / "root-cert.pem"

    def control_args(self) -> list[str]:
        """`mizzen control`'s flags for the CA in `ca_dir`, its serving certificate naming the
        address the sidecars dial."""
        return [
            "--ca-dir", str(self.ca_dir), "--secure-port", str(SECURE_PORT),
            "--ca-port", str(CA_PORT), "--advertise-address", self.host_ip,
        ]  # fmt: skip

    def spiffe_id(self, namespace: str, service_account: str) -> SpiffeId:
        return SpiffeId(TRUST_DOMAIN, namespace, service_account)

    def environment(self, pod_name: str, namespace: str, service_account: str) -> dict[str, str]:
        """The identity part of a sidecar's environment; writes its token (readable by the
        agent only). The token key is the CA directory's (made here if the control plane has
        not made it yet: both take the directory's lock)."""
        key = load_or_create_token_key(self.ca_dir)
        identity = self.spiffe_id(namespace, service_account)
        token = issue_token(key, identity, "mizzen-ca", TOKEN_TTL, datetime.now(UTC))
        directory = self.sockets / pod_name
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        token_path = directory / "token"
        token_path.touch(mode=0o600)
        token_path.write_text(token)
        return {
            contract.ENV_TOKEN_PATH: str(token_path),
            contract.ENV_ROOT_CERT_PATH: str(self.root_cert),
            # The agent makes the socket's directory, owned by the proxy uid.
            contract.ENV_SDS_SOCKET_PATH: str(self.sockets / f"{pod_name}-sds" / "socket"),
            contract.ENV_CA_ADDRESS: f"{self.host_ip}:{CA_PORT}",
            contract.ENV_TRUST_DOMAIN: TRUST_DOMAIN,
        }

    def wait_for_ca(self, timeout: float = 30) -> bool:
        """Until the control plane has made (or loaded) its CA: the root file exists."""
        deadline = time.monotonic() + timeout
        while not self.root_cert.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def close(self) -> None:
        shutil.rmtree(self.sockets, ignore_errors=True)


def _reachable_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
