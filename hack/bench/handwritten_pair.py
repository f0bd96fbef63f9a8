"""Two hand-written Envoys with mutual TLS, the benchmark's reference for mizzen's sidecar pair:
static config, the same Envoy binary, ECDSA P-256 certificates with SPIFFE ids from a CA of
their own, HTTP/1.1, a router and nothing else (no redirect, no telemetry, no policy).

client pod: Envoy on 127.0.0.1:CLIENT_PORT -> server pod's Envoy on SERVER_PORT (mTLS, the
server's SPIFFE id checked) -> the app on 127.0.0.1:APP_PORT."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from control.agent.envoy_binary import find_envoy
from control.cli.demo.mesh import PodHandle

_HCM: Final = "envoy.filters.network.http_connection_manager"
CLIENT_PORT: Final = 10000
SERVER_PORT: Final = 10443
_T: Final = "type.googleapis.com/envoy.extensions."
CLIENT_ID: Final = "spiffe://bench.local/ns/bench/sa/client"
SERVER_ID: Final = "spiffe://bench.local/ns/bench/sa/server"


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, text)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(directory: Path) -> None:
    """root.pem, and client/server .pem + .key with their SPIFFE ids."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(_name("bench-root")).issuer_name(_name("bench-root"))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    (directory / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    for name, spiffe in (("client", CLIENT_ID), ("server", SERVER_ID)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]),
                critical=True,
            )
            .sign(root_key, hashes.SHA256())
        )  # fmt: skip
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(_pem_key(key))


def _common(directory: Path, name: str, peer_id: str) -> dict[str, Any]:
    return {
        "tls_certificates": [
            {
                "certificate_chain": {"filename": str(directory / f"{name}.pem")},
                "private_key": {"filename": str(directory / f"{name}.key")},
            }
        ],
        "validation_context": {
            "trusted_ca": {"filename": str(directory / "root.pem")},
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": peer_id}}],
        },
    }


def _http_listener(port: int, cluster: str, address: str) -> dict[str, Any]:
    manager = {
        "@type": _T + "filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _T + "filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": f"listener_{port}",
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _cluster(name: str, address: str, port: int) -> dict[str, Any]:
    endpoint = {
        "endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}
    }
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]},
    }


def client_bootstrap(directory: Path, server_ip: str) -> dict[str, Any]:
    cluster = _cluster("server", server_ip, SERVER_PORT)
    cluster["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": _common(directory, "client", SERVER_ID),
        },
    }
    return {
        "node": {"id": "bench-client", "cluster": "bench"},
        "static_resources": {
            "listeners": [_http_listener(CLIENT_PORT, "server", "127.0.0.1")],
            "clusters": [cluster],
        },
    }


def server_bootstrap(directory: Path, app_port: int) -> dict[str, Any]:
    listener = _http_listener(SERVER_PORT, "app", "0.0.0.0")
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": _common(directory, "server", CLIENT_ID),
        },
    }
    return {
        "node": {"id": "bench-server", "cluster": "bench"},
        "static_resources": {
            "listeners": [listener],
            "clusters": [_cluster("app", "127.0.0.1", app_port)],
        },
    }


def start_pair(
    client: PodHandle, server: PodHandle, directory: Path, app_port: int, log: IO[str]
) -> str:
    """Both Envoys started; returns the URL a client in `client` sends to."""
    make_pki(directory)
    envoy = str(find_envoy())
    for pod, bootstrap in (
        (client, client_bootstrap(directory, server.ip)),
        (server, server_bootstrap(directory, app_port)),
    ):
        path = directory / f"{pod.name}.yaml"
        path.write_text(yaml.safe_dump(bootstrap))
        argv = [envoy, "-c", str(path), "--disable-hot-restart", "--concurrency", "1",
                "--log-level", "warning"]  # fmt: skip
        pod.popen(argv, stdout=log, stderr=subprocess.STDOUT)
    return f"http://127.0.0.1:{CLIENT_PORT}/"
