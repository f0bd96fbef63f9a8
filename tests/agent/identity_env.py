"""For the identity tests with real processes: the CA as `mizzen ca serve` (stopped and started
again on the same port and directory), a local-mode token file, a socket directory the proxy
uid can reach, an Envoy serving TLS with the agent's SDS certificate, and a TLS client that
keeps one connection open while it also opens new ones."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from envoy.service.discovery.v3 import ads_pb2_grpc
from prometheus_client import CollectorRegistry

from control.agent.bootstrap_identity import sds_cluster
from control.agent.envoy_binary import find_envoy
from control.agent.identity_settings import IdentitySettings
from control.cli.ca_wiring import build_identity, secure_server
from control.config.sds_names import sds_config
from control.identity.spiffe import SpiffeId
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.local_tokens import issue_token, load_or_create_token_key
from control.plane.ca.peer import peer_spiffe_id
from injector import contract
from tests.agent.conftest import free_port, pod_env, wait_for


@dataclass
class CaProcess:
    ca_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> CaProcess:
        argv = [sys.executable, "-m", "control.cli", "ca", "serve", f"--ca-dir={self.ca_dir}",
                f"--secure-port={self.port}", "--advertise-address=127.0.0.1"]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._listening, timeout=20)
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError("the CA exited:\n" + self.log_path.read_text())
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def token_file(ca_dir: Path, directory: Path, namespace: str, service_account: str) -> Path:
    key = load_or_create_token_key(ca_dir)
    identity = SpiffeId("cluster.local", namespace, service_account)
    path = directory / "token"
    path.write_text(issue_token(key, identity, "mizzen-ca", timedelta(hours=1), datetime.now(UTC)))
    return path


def reachable_dir() -> Path:
    """A directory under /tmp the proxy uid can traverse (pytest's tmp_path is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="mzid-"))
    path.chmod(0o755)
    return path


def identity_env(ca: CaProcess, token: Path, socket_path: Path, **extra: str) -> dict[str, str]:
    env = {
        contract.ENV_INSTANCE_IP: "127.0.0.1",
        contract.ENV_DISCOVERY_ADDRESS: f"127.0.0.1:{ca.port}",
        contract.ENV_TOKEN_PATH: str(token),
        contract.ENV_ROOT_CERT_PATH: str(ca.ca_dir / "root-cert.pem"),
        contract.ENV_SDS_SOCKET_PATH: str(socket_path),
    }
    return pod_env(**{**env, **extra})


def tls_server_bootstrap(socket_path: Path, admin_port: int, port: int) -> dict[str, Any]:
    """An Envoy answering HTTPS on `port` with the agent's `default` certificate (SDS)."""
    settings = IdentitySettings(
        spiffe_id="spiffe://cluster.local/ns/shop/sa/client", token_path=Path("/dev/null"),
        root_cert_path=Path("/dev/null"), sds_socket_path=socket_path, ca_host="x", ca_port=1,
        discovery_host="x",
    )  # fmt: skip
    hcm = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    tls = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    route = {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}  # fmt: skip
    admin = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}}
    return {
        "node": {"id": "tls-server", "cluster": "tests"},
        "admin": admin,
        "static_resources": {
            "clusters": [sds_cluster(settings)],
            "listeners": [{
                "name": "tls",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{
                    "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                        "@type": f"type.googleapis.com/{tls}",
                        "common_tls_context": {"tls_certificate_sds_secret_configs": [
                            {"name": "default", "sds_config": sds_config()}]},
                    }},
                    "filters": [{"name": "envoy.filters.network.http_connection_manager",
                                 "typed_config": {
                        "@type": f"type.googleapis.com/{hcm}", "stat_prefix": "tls",
                        "route_config": {"virtual_hosts": [
                            {"name": "all", "domains": ["*"], "routes": [route]}]},
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/"
                                     "envoy.extensions.filters.http.router.v3.Router"}}],
                    }}],
                }],
            }],
        },
    }  # fmt: skip


@dataclass
class TlsServerEnvoy:
    socket_path: Path
    directory: Path
    admin_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> TlsServerEnvoy:
        config = self.directory / "tls-server.yaml"
        bootstrap = tls_server_bootstrap(self.socket_path, self.admin_port, self.port)
        config.write_text(yaml.safe_dump(bootstrap))
        argv = [str(find_envoy()), "-c", str(config), "--disable-hot-restart",
                "--log-level", "warning", "--concurrency", "1"]  # fmt: skip
        with (self.directory / "tls-server.log").open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def client_context(root_file: Path) -> ssl.SSLContext:
    """Verifies the chain against the mesh root; the workload certificate names a SPIFFE id,
    not a host, so the host name is not checked."""
    context = ssl.create_default_context(cafile=str(root_file))
    context.check_hostname = False
    return context


def peer_serial(connection: http.client.HTTPSConnection) -> int:
    assert connection.sock is not None
    der = connection.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
    return x509.load_der_x509_certificate(der).serial_number


@dataclass
class Traffic:
    """Requests in a thread until stopped: one long-lived connection, plus a new connection
    every few requests (which shows the certificate being served)."""

    port: int
    root_file: Path
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    serials: list[tuple[float, int]] = field(default_factory=list)
    reconnects: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=5, context=client_context(self.root_file)
        )
        connection.connect()
        return connection

    def _get(self, connection: http.client.HTTPSConnection) -> None:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200 or body != b"ok":
            raise AssertionError(f"status {response.status}: {body[:80]!r}")

    def _run(self) -> None:
        kept = self._connect()
        self.serials.append((time.monotonic(), peer_serial(kept)))
        while not self._stop.wait(0.02):
            try:
                self._get(kept)
                fresh = self._connect()
                self.serials.append((time.monotonic(), peer_serial(fresh)))
                self._get(fresh)
                fresh.close()
                self.requests += 2
            except (OSError, ssl.SSLError, http.client.HTTPException, AssertionError) as error:
                self.failures.append(f"{time.strftime('%X')}: {type(error).__name__}: {error}")
                kept.close()
                kept = self._connect()
                self.reconnects += 1
        kept.close()

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def distinct_serials(self) -> list[int]:
        seen: list[int] = []
        for _, serial in self.serials:
            if serial not in seen:
                seen.append(serial)
        return seen


def https_ready(port: int, root_file: Path) -> bool:
    try:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=2, context=client_context(root_file)
        )
        connection.request("GET", "/")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return False


def cleanup_dir(path: Path) -> None:
    for child in sorted(path.rglob("*"), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink(missing_ok=True)
    path.rmdir()


class AdsRecorder:
    """An ADS stand-in on a secure port that requires client certificates (the mesh-issued
    serving certificate, as the control plane's): it records who connects (the client
    certificate's SPIFFE id) and the node of the first request, and answers nothing."""

    def __init__(self, ca_dir: Path) -> None:
        self.ca_dir = ca_dir
        self.seen: list[tuple[str | None, str]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: Any = None
        self._parts: Any = None

    def _register(self, server: Any) -> None:
        recorder = self

        class Ads(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
            async def _record(self, requests: Any, context: Any) -> None:
                identity = peer_spiffe_id(context)
                async for request in requests:
                    recorder.seen.append((identity.uri if identity else None, request.node.id))
                    break
                await asyncio.sleep(3600)

            async def StreamAggregatedResources(self, requests: Any, context: Any) -> None:  # noqa: N802
                await self._record(requests, context)

            async def DeltaAggregatedResources(self, requests: Any, context: Any) -> None:  # noqa: N802
                await self._record(requests, context)

        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(Ads(), server)

    async def _start(self) -> None:
        settings = CaSettings(ca_dir=self.ca_dir, advertise_addresses=("127.0.0.1",))
        self._parts = build_identity(settings, None, CollectorRegistry())
        self._server = secure_server(
            self._parts, 0, [self._register], host="127.0.0.1",
            require_client_cert=True, with_certificates=False,
        )  # fmt: skip
        self.port = await self._server.start()

    def start(self) -> AdsRecorder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(20)
        return self

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(0), self._loop).result(10)
            self._parts.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
