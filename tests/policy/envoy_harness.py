"""A real Envoy carrying mizzen's translated policy filters, without the mesh: one static
bootstrap with a listener per policy set (HTTP or TCP; each with an mTLS chain that requires a
client certificate from the test CA and a plaintext chain, told apart by tls_inspector as an
Istio PERMISSIVE inbound listener is) in front of a plain HTTP upstream (an Envoy listener with
a direct response that echoes the path it received in `x-seen-path`). Many policy sets share
one Envoy, so a table or a property test starts Envoy once per batch."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import httpx
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401  (registered for parsing)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401

from control.agent.bootstrap import RUNTIME
from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.jwks import JwksDocument
from control.plane.model.state import Document
from control.plane.xds.translate.authz.inbound import (
    AUDIT_LOG_COMMAND,
    AUDIT_LOG_FIELD,
    InboundPolicy,
    MeshPolicies,
)
from control.plane.xds.translate.resources import CLUSTER, LISTENER, from_dicts
from tests.control.envoy_static import envoy_binary
from tests.policy.pki import MeshCA

_T = "type.googleapis.com/"
HCM = _T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
WORKLOAD_NAMESPACE = "foo"
WORKLOAD_LABELS = {"app": "httpbin"}
SERVER_ID = "cluster.local/ns/foo/sa/httpbin"


class PolicyConfigError(AssertionError):
    """A test case's resources did not validate."""


def inbound_policy(
    docs: Sequence[Mapping[str, Any]],
    mesh: MeshConfig | None = None,
    jwks: Mapping[str, JwksDocument] | None = None,
    known_hosts: frozenset[str] = frozenset(),
    namespace: str = WORKLOAD_NAMESPACE,
    labels: Mapping[str, str] = WORKLOAD_LABELS,
) -> InboundPolicy:
    """The InboundPolicy the control plane would compute for the test workload."""
    state = build_state([Document(f"case#{i}", dict(d)) for i, d in enumerate(docs)], mesh)
    errors = [str(p) for p in state.problems if p.severity == "error"]
    if errors:
        raise PolicyConfigError("; ".join(errors))
    state = replace(state, jwks=dict(jwks or {}))
    return MeshPolicies(state, lambda host: host in known_hosts).for_workload(
        namespace, dict(labels)
    )


class Filters(Protocol):
    """What a listener takes from a policy set (an InboundPolicy, or filters made by hand)."""

    def http_filters(self) -> list[dict[str, Any]]: ...
    def network_filters(self) -> list[dict[str, Any]]: ...
    def hcm_options(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Slot:
    """One listener: a policy set on an HTTP or a TCP port."""

    name: str
    policy: Filters
    tcp: bool = False
    port: int = 0  # 0: any free port (see PolicyEnvoy.ports)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held open until every one is chosen)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _address(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _static_cluster(name: str, port: int, http2: bool = False) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(port)}}]}],
        },
    }
    if http2:
        options = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        cluster["typed_extension_protocol_options"] = {
            options: {"@type": _T + options, "explicit_http_config": {"http2_protocol_options": {}}}
        }
    return cluster


def _tls_context(ca: MeshCA) -> dict[str, Any]:
    server = ca.issue(SERVER_ID, dns="localhost")
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _T + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"inline_string": server.cert_pem.decode()},
                    "private_key": {"inline_string": server.key_pem.decode()},
                }],
                "validation_context": {"trusted_ca": {"inline_string": ca.cert_pem.decode()}},
            },
        },
    }  # fmt: skip


def _filters(slot: Slot, workdir: Path) -> list[dict[str, Any]]:
    if slot.tcp:
        proxy = {
            "name": "envoy.filters.network.tcp_proxy",
            "typed_config": {
                "@type": _T + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "stat_prefix": slot.name,
                "cluster": "upstream",
            },
        }
        return [*slot.policy.network_filters(), proxy]
    access_log = {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": _T + "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(workdir / f"access-{slot.name}.log"),
            "log_format": {"json_format": {
                AUDIT_LOG_FIELD: AUDIT_LOG_COMMAND, "path": "%REQ(:PATH)%",
                "code": "%RESPONSE_CODE%"}},
        },
    }  # fmt: skip
    config: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": slot.name,
        "route_config": {
            "name": slot.name,
            "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "route": {"cluster": "upstream", "timeout": "5s"}}]}],
        },
        "http_filters": [
            *slot.policy.http_filters(),
            {"name": "envoy.filters.http.router",
             "typed_config": {"@type": _T + "envoy.extensions.filters.http.router.v3.Router"}},
        ],
        "access_log": [access_log],
        "use_remote_address": False,
    }  # fmt: skip
    for key, value in slot.policy.hcm_options().items():
        if key == "access_log":
            config["access_log"] = [*config["access_log"], *value]
        else:
            config[key] = value
    return [{"name": "envoy.filters.network.http_connection_manager", "typed_config": config}]


def _listener(slot: Slot, ca: MeshCA, workdir: Path) -> dict[str, Any]:
    filters = _filters(slot, workdir)
    return {
        "name": slot.name,
        "address": _address(slot.port),
        "listener_filters": [{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {
                "@type": _T + "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
        }],
        "filter_chains": [
            {"name": "mtls", "filter_chain_match": {"transport_protocol": "tls"},
             "transport_socket": _tls_context(ca), "filters": filters},
            {"name": "plaintext", "filter_chain_match": {"transport_protocol": "raw_buffer"},
             "filters": filters},
        ],
    }  # fmt: skip


def _upstream(port: int) -> dict[str, Any]:
    echo = [{"header": {"key": "x-seen-path", "value": "%REQ(:PATH)%"}}]
    config = {
        "@type": HCM,
        "stat_prefix": "upstream",
        "normalize_path": False,
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {
                "inline_string": "ok"}}, "response_headers_to_add": echo}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": _T + "envoy.extensions.filters.http.router.v3.Router"}}],
    }  # fmt: skip
    return {
        "name": "upstream",
        "address": _address(port),
        "filter_chains": [{"filters": [
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}]}],
    }  # fmt: skip


@dataclass
class PolicyEnvoy:
    process: subprocess.Popen[bytes]
    admin: str
    ports: dict[str, int]
    workdir: Path
    log: Path
    ca: MeshCA
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.admin, trust_env=False, timeout=5)

    def stats(self, contains: str = "") -> dict[str, int]:
        text = self.http.get("/stats", params={"filter": contains} if contains else {}).text
        out: dict[str, int] = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name] = int(value)
        return out

    def access_log(self, slot: str) -> list[dict[str, Any]]:
        path = self.workdir / f"access-{slot}.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def run_policy_envoy(
    slots: Sequence[Slot],
    ca: MeshCA,
    workdir: Path,
    extra_clusters: Sequence[dict[str, Any]] = (),
) -> Iterator[PolicyEnvoy]:
    upstream_port = free_port()
    listeners = [_listener(slot, ca, workdir) for slot in slots] + [_upstream(upstream_port)]
    clusters = [_static_cluster("upstream", upstream_port), *extra_clusters]
    # The translation's own check: every dict parses as the Envoy protobuf it claims to be.
    from_dicts({LISTENER: listeners, CLUSTER: clusters})
    bootstrap = {
        "node": {"id": "sidecar~127.0.0.1~httpbin.foo~foo.svc.cluster.local", "cluster": "t"},
        "admin": {"address": _address(0)},
        "static_resources": {"listeners": listeners, "clusters": clusters},
        # The sidecar's runtime (control.agent.bootstrap), which the policy filters rely on.
        "layered_runtime": {"layers": [{"name": "static", "static_layer": dict(RUNTIME)}]},
    }
    config = workdir / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    admin_path = workdir / "admin-address"
    admin_path.unlink(missing_ok=True)
    log = workdir / "envoy.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [envoy_binary(), "-c", str(config), "--admin-address-path", str(admin_path),
             "--disable-hot-restart", "--log-level", "warning", "--concurrency", "1"],
            stdout=out, stderr=out,
        )  # fmt: skip
    envoy: PolicyEnvoy | None = None
    try:
        deadline = time.monotonic() + 20
        while not (admin_path.exists() and admin_path.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"envoy did not start: {log.read_text()[-3000:]}")
            time.sleep(0.02)
        admin = "http://" + admin_path.read_text().strip()
        try:
            ports = _listener_ports(admin, [s.name for s in slots], deadline)
        except httpx.HTTPError as error:
            raise RuntimeError(f"envoy failed: {error}: {log.read_text()[-3000:]}") from error
        envoy = PolicyEnvoy(process, admin, ports, workdir, log, ca)
        _wait_port(upstream_port, deadline)
        yield envoy
    finally:
        if envoy is not None:
            envoy.http.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listener_ports(admin: str, names: list[str], deadline: float) -> dict[str, int]:
    with httpx.Client(base_url=admin, trust_env=False, timeout=5) as client:
        while True:
            data = client.get("/listeners", params={"format": "json"}).json()
            ports = {
                s["name"]: s["local_address"]["socket_address"].get("port_value", 0)
                for s in data.get("listener_statuses", [])
            }
            if all(ports.get(n) for n in names):
                return {n: ports[n] for n in names}
            if time.monotonic() > deadline:
                raise RuntimeError(f"listeners not bound: {ports}")
            time.sleep(0.02)


def _wait_port(port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@dataclass(frozen=True)
class Request:
    """One request as a client sends it (the path exactly as written on the wire)."""

    path: str = "/"
    method: str = "GET"
    host: str = "httpbin.foo.svc.cluster.local"
    headers: tuple[tuple[str, str], ...] = ()
    principal: str | None = None  # client certificate `spiffe://<principal>`; None: plaintext
    source_ip: str = "127.0.0.1"
    sni: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: the connection was closed without a response
    seen_path: str | None = None
    body: str = ""

    @property
    def closed(self) -> bool:
        return self.status is None


def send(envoy: PolicyEnvoy, slot: str, request: Request, timeout: float = 5) -> Outcome:
    """One HTTP/1.1 request on a fresh connection (also through a TCP slot, whose upstream
    speaks HTTP: a closed connection means the TCP policy refused it)."""
    raw = socket.create_connection(
        ("127.0.0.1", envoy.ports[slot]), timeout=timeout, source_address=(request.source_ip, 0)
    )
    sock: socket.socket = raw
    try:
        if request.principal is not None:
            context = ssl.create_default_context(cafile=str(envoy.ca.cert_path))
            context.check_hostname = False
            client = envoy.ca.issue(request.principal)
            context.load_cert_chain(str(client.cert_path), str(client.key_path))
            sock = context.wrap_socket(raw, server_hostname=request.sni or "localhost")
        lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {request.host}"]
        lines += [f"{k}: {v}" for k, v in request.headers]
        lines += ["Connection: close", "", ""]
        sock.sendall("\r\n".join(lines).encode("latin-1"))
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
        except (http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError):
            return Outcome(None)
        body = response.read().decode("latin-1", errors="replace")
        return Outcome(response.status, response.getheader("x-seen-path"), body)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
        return Outcome(None)
    finally:
        sock.close()
