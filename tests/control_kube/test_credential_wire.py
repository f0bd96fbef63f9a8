"""DestinationRule `credentialName` on the wire: `mizzen control --kube` (the control plane with
its CA and secure port, its config and Secrets from the fake API server) and a real Envoy
bootstrapped as the agent does (ADS over mutual TLS with a workload certificate from the CA
port, the node of a pod in `shop`). The app's plain HTTP goes through Envoy's cluster for a
ServiceEntry host to a TLS server that requires a client certificate; the client certificate
and the roots that check the server exist only in a Kubernetes Secret, and reach Envoy only as
SDS resources over its ADS stream.

- The call succeeds and the server sees the Secret's certificate (and the rule's SNI).
- Rotating the Secret's certificate changes what the server sees.
- Roots in the Secret that did not sign the server: 503 from Envoy, a certificate verify
  failure, nothing sent without TLS.
- An Envoy of another namespace with the same labels (the rule is not its own) holds no
  secret; the plaintext xDS port never serves Secrets, whatever node a client claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiClient

from control.agent.csr_client import GrpcCertificateSigner
from control.cli.control_identity import IdentityConfig
from control.cli.control_process import ControlPlane, ControlSettings
from control.identity.keys import KeySpec, build_csr, generate_key, private_key_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from control.plane.sources.kube import KubeSource
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.resources import CLUSTER, SECRET
from tests.control.ads_client import AdsClient
from tests.control.credential_certs import TestCa, tls_secret
from tests.control.envoy_proc import Envoy, ads_bootstrap, dump_section, run_envoy_config
from tests.control_kube.conftest import FAST, TOKEN
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, SECRETS, FakeApiServer

pytestmark = pytest.mark.anyio

HOST = "api.payments.example"
CLUSTER_NAME = f"outbound|80||{HOST}"
SECRET_NAMES = {"kubernetes://pay", "kubernetes://pay-cacert"}
CLIENT_CA = TestCa("payments-client-ca")
SERVER_CA = TestCa("payments-server-ca")
WRONG_CA = TestCa("not-the-server-ca")


class _Served:
    count = 0  # requests the TLS server answered


SERVED = _Served()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        SERVED.count += 1
        peer = self.connection.getpeercert()
        subject = dict(item[0] for item in peer["subject"]) if peer else {}
        sni = self.server.sni  # type: ignore[attr-defined]
        body = json.dumps({"client": subject.get("commonName"), "sni": sni}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # each call a new handshake
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def tls_server(workdir: Path) -> Iterator[int]:
    """HTTPS on loopback requiring a client certificate of CLIENT_CA; it answers with the
    client certificate's CN and the SNI it was sent."""
    issued = SERVER_CA.issue(HOST, server_names=(HOST,))
    (workdir / "server.pem").write_bytes(issued.cert)
    (workdir / "server.key").write_bytes(issued.key)
    (workdir / "clients.pem").write_bytes(CLIENT_CA.pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(workdir / "server.pem", workdir / "server.key")
    context.load_verify_locations(workdir / "clients.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.sni = None  # type: ignore[attr-defined]

    def sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        server.sni = name  # type: ignore[attr-defined]

    context.sni_callback = sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def seed(fake: FakeApiServer, server_port: int) -> None:
    fake.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    fake.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    fake.apply({
        "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
        "metadata": {"name": "payments", "namespace": "shop"},
        "spec": {"hosts": [HOST], "location": "MESH_EXTERNAL", "resolution": "STATIC",
                 "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                 "endpoints": [{"address": "127.0.0.1", "ports": {"http": server_port}}]},
    })  # fmt: skip
    fake.apply({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "payments", "namespace": "shop"},
        "spec": {"host": HOST, "workloadSelector": {"matchLabels": {"app": "checkout"}},
                 "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": "pay",
                                           "sni": HOST, "subjectAltNames": [HOST]}}},
    })  # fmt: skip
    fake.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout", "namespace": "shop", "labels": {"app": "checkout"}},
        "spec": {"serviceAccountName": "checkout", "containers": [{"name": "app"}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1"},
    })  # fmt: skip
    fake.apply(tls_secret("shop", "pay", CLIENT_CA.issue("checkout-1"), SERVER_CA.pem))


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    """The API server of conftest's `client`, serving Secrets too."""
    with FakeApiServer((*DEFAULT_RESOURCES, SECRETS), token=TOKEN) as server:
        yield server


@pytest.fixture
async def plane(client: ApiClient, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    settings = ControlSettings(xds_port=0, debug_port=0, debounce_quiet=0.05)
    ca = CaSettings(ca_dir=tmp_path / "ca", advertise_addresses=("127.0.0.1",))
    identity = IdentityConfig(ca, secure_port=0, ca_port=0, host="127.0.0.1")
    source = KubeSource(client, settings=FAST)
    async with ControlPlane(settings, source=source, identity=identity) as started:
        yield started


async def workload_files(plane: ControlPlane, who: SpiffeId, into: Path) -> tuple[Path, Path]:
    """What the agent does: a key, a CSR and a token to the CA port; the chain and key as
    files for the bootstrap's xDS cluster (the agent serves them over its SDS socket)."""
    assert plane.identity is not None
    ca_dir = plane.identity.config.settings.ca_dir
    assert ca_dir is not None
    into.mkdir(parents=True, exist_ok=True)
    token = into / "token"
    token.write_text(issue_token(load_or_create_token_key(ca_dir), who, "mizzen-ca",
                                 timedelta(hours=1), datetime.now(UTC)))  # fmt: skip
    signer = GrpcCertificateSigner(
        f"127.0.0.1:{plane.identity.ca_port}", token, ca_dir / "root-cert.pem", 10.0
    )
    key = generate_key(KeySpec())
    chain = await signer.create_certificate(build_csr(key, who.uri).decode(), 3600)
    (into / "chain.pem").write_text("".join(chain))
    (into / "key.pem").write_bytes(private_key_pem(key))
    return into / "chain.pem", into / "key.pem"


def bootstrap(
    plane: ControlPlane, namespace: str, chain: Path, key: Path, listen: int, api: str
) -> dict[str, Any]:
    """The agent's shape: ADS (`api`: DELTA_GRPC, the agent's default, or GRPC) to the
    secure port over mutual TLS (workload certificate, the mesh roots); plus a static listener
    standing for the app's captured traffic."""
    assert plane.identity is not None
    assert plane.identity.parts is not None
    roots = chain.parent / "roots.pem"
    roots.write_text(plane.identity.parts.authority.issuer.roots_pem)
    node = f"sidecar~127.0.0.1~checkout.{namespace}~{namespace}.svc.cluster.local"
    config = ads_bootstrap(node, plane.identity.secure_port, {"app": "checkout"}, api)
    config["node"]["metadata"]["SERVICE_ACCOUNT"] = "checkout"
    xds = config["static_resources"]["clusters"][0]
    xds["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
                     ".UpstreamTlsContext",
            "common_tls_context": {
                "tls_certificates": [{"certificate_chain": {"filename": str(chain)},
                                      "private_key": {"filename": str(key)}}],
                "validation_context": {"trusted_ca": {"filename": str(roots)}},
                "alpn_protocols": ["h2"],
            },
        },
    }  # fmt: skip
    router = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
    hcm = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
           ".HttpConnectionManager")  # fmt: skip
    config["static_resources"]["listeners"] = [{
        "name": "app",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": hcm, "stat_prefix": "app",
                "http_filters": [{"name": "envoy.filters.http.router",
                                  "typed_config": {"@type": router}}],
                "route_config": {"validate_clusters": False, "virtual_hosts": [{
                    "name": "payments", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"},
                                "route": {"cluster": CLUSTER_NAME, "timeout": "5s"}}],
                }]},
            },
        }]}],
    }]  # fmt: skip
    return config


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def call(port: int) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return await http.get(f"http://127.0.0.1:{port}/")


async def until(port: int, check: Any, envoy: Envoy, what: str, timeout: float = 20) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            last = await call(port)
        except httpx.TransportError as error:  # Envoy's listener waits for its first config
            last = error
        else:
            if check(last):
                return last
        await asyncio.sleep(0.2)
    shown = last.text if isinstance(last, httpx.Response) else ""
    raise AssertionError(f"not within {timeout}s: {what}; last {last} {shown}\n{envoy.log_tail()}")


async def secrets_held(envoy: Envoy) -> list[dict[str, Any]]:
    response = await envoy.http.get("/config_dump", params={"resource": "dynamic_active_secrets"})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json().get("configs", [])
    return found


@pytest.mark.parametrize("api", ["DELTA_GRPC", "GRPC"])
async def test_the_secrets_certificate_reaches_the_server_only_over_sds(
    fake: FakeApiServer, plane: ControlPlane, tmp_path: Path, api: str
) -> None:
    with tls_server(tmp_path) as server_port:
        seed(fake, server_port)
        await asyncio.sleep(0)
        chain, key = await workload_files(plane, SpiffeId("cluster.local", "shop", "checkout"),
                                          tmp_path / "shop")  # fmt: skip
        listen = free_port()
        config = bootstrap(plane, "shop", chain, key, listen, api)
        async with run_envoy_config(tmp_path / "envoy-shop", config) as envoy:
            ok = await until(listen, lambda r: r.status_code == 200, envoy, "a 200 through TLS")
            assert ok.json() == {"client": "checkout-1", "sni": HOST}
            held = await secrets_held(envoy)
            assert {s["name"] for s in held} == SECRET_NAMES

            # Rotation: a new certificate in the Secret; the next handshake presents it.
            fake.apply(tls_secret("shop", "pay", CLIENT_CA.issue("checkout-2"), SERVER_CA.pem))
            rotated = await until(
                listen,
                lambda r: r.status_code == 200 and r.json()["client"] == "checkout-2",
                envoy,
                "the rotation",
            )
            assert rotated.json()["sni"] == HOST

            # Roots that did not sign the server: refused by Envoy, never sent without TLS.
            fake.apply(tls_secret("shop", "pay", CLIENT_CA.issue("checkout-3"), WRONG_CA.pem))
            await until(listen, lambda r: r.status_code == 503, envoy, "a 503")
            served = SERVED.count
            for _ in range(3):
                assert (await call(listen)).status_code == 503
            assert SERVED.count == served  # the server answered nothing meanwhile
            stats = await envoy.http.get("/stats", params={"filter": "ssl.fail_verify"})
            failures = [line for line in stats.text.splitlines()
                        if line.startswith(f"cluster.{CLUSTER_NAME}.ssl.fail_verify")]  # fmt: skip
            assert any(not line.endswith(": 0") for line in failures), stats.text

            # An Envoy of another namespace with the same labels: the rule is not its own.
            other_chain, other_key = await workload_files(
                plane, SpiffeId("cluster.local", "other", "checkout"), tmp_path / "other"
            )
            other_config = bootstrap(plane, "other", other_chain, other_key, free_port(), api)
            async with run_envoy_config(tmp_path / "envoy-other", other_config) as other:
                for _ in range(100):
                    clusters = dump_section(await other.config_dump(), "ClustersConfigDump")
                    active = clusters.get("dynamic_active_clusters", [])
                    if any(c["cluster"]["name"] == CLUSTER_NAME for c in active):
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"no clusters: {other.log_tail()}")
                assert await secrets_held(other) == []


async def test_the_plaintext_port_never_serves_secrets(
    fake: FakeApiServer, plane: ControlPlane
) -> None:
    """Anyone may claim any node on the plaintext port: the node of `shop`'s checkout pod
    asks for its Secrets there and gets nothing, though its snapshot holds them."""
    seed(fake, 9)
    node = "sidecar~127.0.0.1~checkout.shop~shop.svc.cluster.local"
    proxy = parse_node(node)
    for _ in range(100):
        if set(plane.cache.snapshot_for(proxy).of(SECRET)) == SECRET_NAMES:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the snapshot never held the Secrets")
    ads = AdsClient(plane.xds_port, node)
    try:
        ads.send(CLUSTER)
        clusters = await ads.recv()
        assert any(CLUSTER_NAME.encode() in r.value for r in clusters.resources)
        ads.ack(clusters)
        ads.send(SECRET, names=sorted(SECRET_NAMES))
        assert await ads.nothing_within(2.0)
    finally:
        await ads.close()
