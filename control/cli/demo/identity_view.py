"""`mizzen demo`'s view of identity: what each sidecar's Envoy holds (`mizzen proxy-config
secret`, run in the pod, against its admin on localhost) and proof that its xDS stream is mutual
TLS (the `xds-grpc` cluster's TLS handshakes, and the control plane's own count of refusals)."""

from __future__ import annotations

import sys

from control.cli.demo.mesh import PodHandle, mizzen, run_in
from injector import contract

_FETCH = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
)


def envoy_admin(pod: PodHandle, path: str) -> str:
    """Envoy's admin answer in the pod (it listens on the pod's localhost only)."""
    url = f"http://127.0.0.1:{contract.ENVOY_ADMIN_PORT}{path}"
    return run_in(pod, [sys.executable, "-c", _FETCH, url])


def envoy_stat(pod: PodHandle, name: str) -> int:
    for line in envoy_admin(pod, f"/stats?filter=^{name}$").splitlines():
        key, _, value = line.partition(": ")
        if key == name and value.strip().isdigit():
            return int(value)
    return 0


def secrets_table(pod: PodHandle, key: str) -> str:
    """`mizzen proxy-config secret KEY` in the pod, indented."""
    text = run_in(pod, mizzen("proxy-config", "secret", key))
    return "\n".join("    " + line for line in text.rstrip().splitlines())


def xds_over_mtls(pod: PodHandle) -> str:
    handshakes = envoy_stat(pod, "cluster.xds-grpc.ssl.handshake")
    failed = envoy_stat(pod, "cluster.xds-grpc.ssl.fail_verify_san")
    return f"xds-grpc TLS handshakes {handshakes}, control-plane name check failures {failed}"
