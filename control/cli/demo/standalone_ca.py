"""Sidecars with identities from a standalone CA, on pods that are network namespaces: the CA
(`mizzen ca serve`) in the bridge's namespace, a local-mode token per pod, and the agent pointed at
the CA (`CA_ADDR`) with an SDS socket the proxy uid can reach. xDS stays plaintext
(`--xds-plaintext`), so the control plane's CA and secure port (`identity.py`) are not needed: the
mTLS tests and benchmark isolate the data plane this way."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Final

from control.cli.demo.mesh import XDS_PORT, MeshError, PodHandle, SidecarPod, mizzen, start_sidecar
from control.identity.spiffe import SpiffeId
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from injector import contract
from injector.redirect.spec import RedirectSpec

CA_PORT: Final = 15012
ROOT_FILE: Final = "root-cert.pem"


def start_ca(host: PodHandle, ca_dir: Path, log: IO[str], timeout: float = 30) -> None:
    """`mizzen ca serve` on the host, returning once the root is written."""
    cmd = mizzen(
        "ca", "serve", f"--ca-dir={ca_dir}", f"--secure-port={CA_PORT}",
        f"--advertise-address={host.ip}",
    )  # fmt: skip
    process = host.popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while not (ca_dir / ROOT_FILE).exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise MeshError(f"the CA did not start (see {log.name})")
        time.sleep(0.1)


def token_file(ca_dir: Path, directory: Path, namespace: str, account: str) -> Path:
    key = load_or_create_token_key(ca_dir)
    identity = SpiffeId("cluster.local", namespace, account)
    path = directory / "token"
    path.write_text(issue_token(key, identity, "mizzen-ca", timedelta(hours=1), datetime.now(UTC)))
    return path


def start_meshed_sidecar(
    pod: PodHandle,
    host: PodHandle,
    *,
    namespace: str,
    labels: Mapping[str, str],
    account: str,
    ca_dir: Path,
    sockets: Path,
    log: IO[str],
    extra_env: Mapping[str, str] | None = None,
) -> None:
    """The redirect and the agent with a workload identity. `sockets`: a directory the proxy
    uid can traverse (a 0700 one would hide the SDS socket from Envoy)."""
    directory = sockets / pod.name
    directory.mkdir(mode=0o755)
    env = {
        contract.ENV_TOKEN_PATH: str(token_file(ca_dir, directory, namespace, account)),
        contract.ENV_ROOT_CERT_PATH: str(ca_dir / ROOT_FILE),
        contract.ENV_SDS_SOCKET_PATH: str(directory / "sds" / "socket"),
        "CA_ADDR": f"{host.ip}:{CA_PORT}",
        **(extra_env or {}),
    }
    start_sidecar(
        pod, SidecarPod(namespace, labels, account), f"{host.ip}:{XDS_PORT}", log,
        base_env=env, extra_args=("--xds-plaintext", "--ca-retry-max=2"),
        # The agent runs as root here (Envoy as 1337): its calls to the CA must not be captured.
        redirect=RedirectSpec(exclude_outbound_ports=(CA_PORT,)),
    )  # fmt: skip
