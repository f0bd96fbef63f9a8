"""The agent's identity with real processes: the CA (`mizzen ca serve`), the agent and its
Envoy, and a second Envoy serving HTTPS with the agent's SDS certificate under continuous
requests: the SPIFFE id in Envoy's `/certs`, xDS over mutual TLS with the control plane's name
checked, rotation without a failed request, and the CA away for longer than a rotation."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.conftest import AgentProcess, wait_for
from tests.agent.identity_env import (
    AdsRecorder,
    CaProcess,
    TlsServerEnvoy,
    Traffic,
    https_ready,
    identity_env,
    reachable_dir,
    token_file,
)

pytestmark = pytest.mark.envoy
StartAgent = Callable[..., AgentProcess]
SPIFFE = "spiffe://cluster.local/ns/shop/sa/client"


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = reachable_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CaProcess]:
    process = CaProcess(tmp_path / "ca", tmp_path / "ca.log").start()
    yield process
    process.stop()


def _admin(agent: AgentProcess, path: str) -> str:
    """Envoy's admin answer, "" while Envoy is not up yet."""
    try:
        return httpx.get(f"http://127.0.0.1:{agent.admin_port}{path}", timeout=5).text
    except httpx.HTTPError:
        return ""


def _stat(agent: AgentProcess, name: str) -> int:
    for line in _admin(agent, f"/stats?filter=^{name}$").splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


def _uris(agent: AgentProcess) -> list[str]:
    certs = json.loads(_admin(agent, "/certs") or '{"certificates": []}')["certificates"]
    return [
        san.get("uri", "")
        for entry in certs
        for cert in entry.get("cert_chain", [])
        for san in cert.get("subject_alt_names", [])
    ]


def test_envoy_holds_the_workload_certificate_and_checks_the_control_planes_name(
    start_agent: StartAgent, ca: CaProcess, workdir: Path
) -> None:
    token = token_file(ca.ca_dir, workdir, "shop", "client")
    socket_path = workdir / "sds" / "socket"
    agent = start_agent(identity_env(ca, token, socket_path))
    wait_for(lambda: SPIFFE in _uris(agent), timeout=20)
    # xDS goes over TLS to the discovery address with this certificate, the server's name
    # (an IP SAN here) verified against ROOTCA: the handshakes succeed.
    wait_for(lambda: _stat(agent, "cluster.xds-grpc.ssl.handshake") > 0, timeout=20)
    assert _stat(agent, "cluster.xds-grpc.ssl.fail_verify_san") == 0
    assert "workload certificate for " + SPIFFE in agent.log()

    # Dialled by a name the control plane's certificate does not carry: refused by Envoy.
    other_socket = workdir / "sds2" / "socket"
    env = identity_env(ca, token, other_socket, MIZZEN_DISCOVERY_ADDRESS=f"localhost:{ca.port}")
    impostor = start_agent(env, extra_args=(f"--ca-address=127.0.0.1:{ca.port}",))
    wait_for(lambda: SPIFFE in _uris(impostor), timeout=20)
    wait_for(lambda: _stat(impostor, "cluster.xds-grpc.ssl.fail_verify_san") > 0, timeout=20)
    assert _stat(impostor, "cluster.xds-grpc.ssl.handshake") == 0


def test_xds_over_mutual_tls_presents_the_workload_certificate(
    start_agent: StartAgent, ca: CaProcess, workdir: Path
) -> None:
    """Envoy dials a port that requires client certificates with its SDS certificate; the
    server names it by its SPIFFE id (what the control plane checks the node's namespace by)."""
    ads = AdsRecorder(ca.ca_dir).start()
    try:
        token = token_file(ca.ca_dir, workdir, "shop", "client")
        env = identity_env(ca, token, workdir / "sds" / "socket",
                           MIZZEN_DISCOVERY_ADDRESS=f"127.0.0.1:{ads.port}")  # fmt: skip
        start_agent(env, extra_args=(f"--ca-address=127.0.0.1:{ca.port}",))
        wait_for(lambda: ads.seen, timeout=30)
    finally:
        ads.stop()
    identity, node = ads.seen[0]
    assert identity == SPIFFE
    assert node == "sidecar~127.0.0.1~client-1.shop~shop.svc.cluster.local"


def _serving(
    start_agent: StartAgent, ca: CaProcess, workdir: Path, ttl: str
) -> tuple[AgentProcess, TlsServerEnvoy]:
    token = token_file(ca.ca_dir, workdir, "shop", "client")
    socket_path = workdir / "sds" / "socket"
    agent = start_agent(
        identity_env(ca, token, socket_path),
        extra_args=(f"--cert-ttl={ttl}", "--ca-retry-max=1", "--xds-plaintext"),
    )
    wait_for(socket_path.exists, timeout=20)
    server = TlsServerEnvoy(socket_path, workdir).start()
    wait_for(lambda: https_ready(server.port, ca.ca_dir / "root-cert.pem"), timeout=30)
    return agent, server


@pytest.mark.slow
def test_rotation_under_continuous_requests(
    start_agent: StartAgent, ca: CaProcess, workdir: Path
) -> None:
    agent, server = _serving(start_agent, ca, workdir, "20s")
    traffic = Traffic(server.port, ca.ca_dir / "root-cert.pem").start()
    try:
        wait_for(lambda: len(traffic.distinct_serials()) >= 3, timeout=45, interval=0.5)
    finally:
        traffic.stop()
        server.stop()
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.reconnects == 0  # the long-lived connection outlived two rotations
    assert traffic.requests > 200
    assert agent.log().count("workload certificate for") >= 3


@pytest.mark.slow
def test_the_ca_away_longer_than_a_rotation_then_back(
    start_agent: StartAgent, ca: CaProcess, workdir: Path
) -> None:
    agent, server = _serving(start_agent, ca, workdir, "30s")
    traffic = Traffic(server.port, ca.ca_dir / "root-cert.pem").start()
    try:
        wait_for(lambda: traffic.serials, timeout=10)
        first = traffic.serials[0][1]
        ca.stop()
        away_since = time.monotonic()
        time.sleep(19)  # past the renewal at ~15 s: the agent retries, the certificate serves
        assert traffic.distinct_serials() == [first]
        assert "cannot renew the workload certificate" in agent.log()
        ca.start()
        wait_for(lambda: len(traffic.distinct_serials()) >= 2, timeout=10, interval=0.2)
        renewed_after = time.monotonic() - away_since
        time.sleep(1)
    finally:
        traffic.stop()
        server.stop()
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.reconnects == 0
    assert renewed_after < 30  # before the first certificate expired
