"""Istio's standard metrics with mutual TLS on, on the wire (real sidecars with certificates
from the real CA, pods in network namespaces: `mtls_mesh`, one mesh for this module).

- A meshed client under STRICT and PERMISSIVE: both reporters count every request by code;
  principals come from the certificates; `connection_security_policy` is `mutual_tls` on the
  destination reporter and `unknown` on the source reporter (as Istio's client sidecar).
- Plaintext to a PERMISSIVE port: `none`, principals and source `unknown`, whatever the client
  claims in the peer header; a DISABLE port: `none`, the source from the client sidecar's header.
- Spoofing under mTLS: a meshed client app's forged headers never change the server's
  `source_*`; a holder of another mesh certificate claiming the client's workload gets the
  certificate's namespace and nothing of the claim.
- TCP under mTLS: `istio_tcp_*` with `mutual_tls` and principals on both reporters.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from control.cli.demo.mesh import run_in, send_requests
from control.identity.keys import KeySpec, build_csr, generate_key, private_key_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.material import FILES, CaMaterial, load_issuer
from control.plane.ca.signer import Issued, SigningPolicy, sign_workload
from control.telemetry.peer import Peer
from tests.e2e.mtls_mesh import NAMESPACE, SERVER_VIP, MtlsMesh, peer_authentication, spiffe
from tests.harness.netns import Pod

pytestmark = [pytest.mark.netns, pytest.mark.envoy]

Sample = tuple[str, dict[str, str], float]
SERVER_HTTP = f"http://{SERVER_VIP}:80"
SERVER_TCP = f"http://{SERVER_VIP}:70/"  # an HTTP app behind a port the Service names TCP
DENIED_PATH = "/denied"
# What a client app claims to be: another workload, namespace and service account.
FORGED = Peer("evil", "other", "evil", "v9", "evil", "v9", "Kubernetes", "evil").encode()
FORGED_HEADERS = {
    "x-mizzen-peer": FORGED,
    "x-forwarded-client-cert": "URI=spiffe://cluster.local/ns/other/sa/evil",
    "x-envoy-peer-metadata-id": "sidecar~10.0.0.1~evil.other~other.svc.cluster.local",
}
OK, DENIED, SPOOFED = 6, 3, 4


def _deny_path() -> dict[str, Any]:
    """Requests to /denied get a 403 from the server's sidecar: a non-200 code both reporters
    count."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-path", "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app": "server"}},
            "action": "DENY",
            "rules": [{"to": [{"operation": {"paths": [DENIED_PATH]}}]}],
        },
    }


_FETCH = (
    "import sys, urllib.request\n"
    "with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:\n"
    "    sys.stdout.write(answer.read().decode())\n"
)


def scrape(mesh: MtlsMesh, pod: Pod) -> list[Sample]:
    """The agent's merged exposition, fetched from the bridge's namespace (this module's mesh
    has no uplink to the test process); a parse error fails the test: it must be valid."""
    url = f"http://{pod.ip}:15020/stats/prometheus"
    text = run_in(mesh.topology.host, [sys.executable, "-c", _FETCH, url], timeout=20)
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


@dataclass
class Counted:
    """What a pod's sidecar counted since `before`."""

    mesh: MtlsMesh
    pod: Pod
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @classmethod
    def start(cls, mesh: MtlsMesh, pod: Pod) -> Counted:
        """From when the pod's standard series stop moving: the sidecar logs a request after
        answering it, so the policy probes' last request may still be on its way."""
        previous: dict[tuple[str, tuple[tuple[str, str], ...]], float] | None = None
        for _ in range(20):
            now = {_key(n, labels): v for n, labels, v in scrape(mesh, pod)}
            standard = {
                k: v
                for k, v in now.items()
                if k[0].startswith("istio_") and k[0].endswith("_total")
            }
            if previous == standard:
                return cls(mesh, pod, now)
            previous = standard
            time.sleep(0.5)
        raise AssertionError(f"{pod.name}'s standard series never settled")

    def samples(self, name: str) -> list[Sample]:
        found = []
        for sample, labels, value in scrape(self.mesh, self.pod):
            grown = value - self.before.get(_key(sample, labels), 0.0)
            if sample == name and grown:
                found.append((sample, labels, grown))
        return found

    def differences(self, name: str, **labels: str) -> list[dict[str, tuple[str, str]]]:
        """For a failure message: per series counted, the labels that differ (seen, wanted)."""
        return [
            {k: (found.get(k, ""), want) for k, want in labels.items() if found.get(k) != want}
            for _, found, _ in self.samples(name)
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(
            v for _, found, v in self.samples(name)
            if all(found.get(k) == want for k, want in labels.items())
        )  # fmt: skip


def eventually(
    check: Callable[[], bool], what: str, seen: Callable[[], Any], timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {what}; seen: {seen()}")


def _converge(
    mesh: MtlsMesh, *documents: dict[str, Any], plain_served: bool, deny: bool = False
) -> None:
    """Writes the policies (with `deny`, the one denying /denied: a DENY rule with HTTP-only
    fields denies all TCP, as in Istio); waits until the server's Envoy has them."""
    mesh.set_policies(*documents, *([_deny_path()] if deny else []))
    direct = f"http://{mesh.server.ip}:8080"
    mesh.until(
        lambda: (mesh.get(mesh.plain, direct + "/").get("status") == 200) is plain_served,
        f"plaintext {'served' if plain_served else 'refused'}",
    )
    denied = 403 if deny else 200
    mesh.until(lambda: mesh.get(mesh.client, SERVER_HTTP + DENIED_PATH).get("status") == denied,
               f"/denied answered {denied}")  # fmt: skip


def _client() -> dict[str, str]:
    return {
        "source_workload": "client", "source_workload_namespace": NAMESPACE,
        "source_app": "client", "source_canonical_service": "client",
        "source_canonical_revision": "latest", "source_cluster": "Kubernetes",
    }  # fmt: skip


def _server() -> dict[str, str]:
    return {
        "destination_workload": "server", "destination_workload_namespace": NAMESPACE,
        "destination_app": "server", "destination_canonical_service": "server",
        "destination_service": f"server.{NAMESPACE}.svc.cluster.local",
        "destination_service_name": "server", "destination_cluster": "Kubernetes",
    }  # fmt: skip


def _principals() -> dict[str, str]:
    return {"source_principal": spiffe("client"), "destination_principal": spiffe("server")}


@pytest.mark.parametrize("mode", ["STRICT", "PERMISSIVE"])
def test_meshed_traffic_is_counted_as_mutual_tls_with_principals_from_certificates(
    mtls_mesh: MtlsMesh, mode: str
) -> None:
    """Every request counted once per reporter, by code; the client app's forged peer headers
    (another workload, namespace and principal) change nothing."""
    mesh = mtls_mesh
    plain_served = mode == "PERMISSIVE"
    _converge(mesh, peer_authentication("all", mode), plain_served=plain_served, deny=True)
    client, server = Counted.start(mesh, mesh.client), Counted.start(mesh, mesh.server)
    ok = send_requests(mesh.client, SERVER_HTTP + "/", OK)
    denied = send_requests(mesh.client, SERVER_HTTP + DENIED_PATH, DENIED)
    spoofed = send_requests(mesh.client, SERVER_HTTP + "/", SPOOFED, FORGED_HEADERS)
    assert (ok.statuses, denied.statuses, spoofed.statuses) == (
        {"200": OK}, {"403": DENIED}, {"200": SPOOFED}
    )  # fmt: skip
    everything = OK + DENIED + SPOOFED
    name = "istio_requests_total"
    source = {"reporter": "source", **_client(), **_server(), **_principals(),
              "connection_security_policy": "unknown", "request_protocol": "http"}  # fmt: skip
    # The server's 8080 backs two Services (`server` and `mixed`): its inbound cluster names one.
    destination = {k: v for k, v in source.items() if not k.startswith("destination_service")}
    destination |= {"reporter": "destination", "connection_security_policy": "mutual_tls"}
    eventually(lambda: server.total(name) == everything, "the server counted every request",
               lambda: server.samples(name))  # fmt: skip
    assert client.total(name, **source, response_code="200") == OK + SPOOFED, client.differences(
        name, **source
    )
    assert client.total(name, **source, response_code="403") == DENIED
    assert client.total(name) == everything, client.samples(name)
    assert server.total(name, **destination, response_code="200") == OK + SPOOFED, (
        server.differences(name, **destination)
    )
    assert server.total(name, **destination, response_code="403") == DENIED
    assert server.total(name) == everything, server.samples(name)  # no series of the forgery


def test_plaintext_to_a_permissive_port_is_none_and_its_claims_are_not_believed(
    mtls_mesh: MtlsMesh,
) -> None:
    """A client without a sidecar (so without a certificate) claims to be the meshed client:
    Istio believes peer metadata from a plaintext exchange only as far as the mesh vouches for
    it; mizzen removes the header on the plaintext chain of a PERMISSIVE port unread."""
    mesh = mtls_mesh
    _converge(mesh, plain_served=True)
    server = Counted.start(mesh, mesh.server)
    claim = Peer("client", NAMESPACE, "client", "unknown", "client", "latest", "Kubernetes",
                 "client").encode()  # fmt: skip
    direct = f"http://{mesh.server.ip}:8080/"
    sent = send_requests(mesh.plain, direct, 5, {"x-mizzen-peer": claim})
    assert sent.statuses == {"200": 5}, sent
    name = "istio_requests_total"
    unknown = {
        "reporter": "destination", "connection_security_policy": "none",
        "source_principal": "unknown", "destination_principal": "unknown",
        "source_workload": "unknown", "source_workload_namespace": "unknown",
        "source_app": "unknown", "source_canonical_revision": "latest",
        "destination_workload": "server", "response_code": "200",
    }  # fmt: skip
    eventually(lambda: server.total(name) == 5, "the server counted 5 requests",
               lambda: server.samples(name))  # fmt: skip
    assert server.total(name, **unknown) == 5, server.samples(name)


def test_a_disable_port_reports_none_and_the_sidecars_header(mtls_mesh: MtlsMesh) -> None:
    """DISABLE: auto-mTLS sends plaintext; no certificate on either side, so no principal; the
    server has nothing better than the header the client's sidecar set (and believes it)."""
    mesh = mtls_mesh
    _converge(mesh, peer_authentication("all", "DISABLE"), plain_served=True)
    client, server = Counted.start(mesh, mesh.client), Counted.start(mesh, mesh.server)
    sent = send_requests(mesh.client, SERVER_HTTP + "/", OK, FORGED_HEADERS)
    assert sent.statuses == {"200": OK}, sent
    name = "istio_requests_total"
    plain = {**_client(), "destination_workload": "server", "response_code": "200",
             "source_principal": "unknown", "destination_principal": "unknown"}  # fmt: skip
    eventually(lambda: server.total(name) == OK, f"the server counted {OK} requests",
               lambda: server.samples(name))  # fmt: skip
    assert (
        server.total(name, **plain, reporter="destination", connection_security_policy="none") == OK
    ), server.differences(name, **plain)
    assert client.total(name, **plain, reporter="source",
                        connection_security_policy="unknown") == OK  # fmt: skip


@dataclass
class Credential:
    uri: str
    chain: Path
    key: Path


def _credential(mesh: MtlsMesh, namespace: str, account: str, into: Path) -> Credential:
    """A workload certificate from the mesh's own CA (its key on disk, as a compromised
    workload or a stolen key would hold it)."""
    files = {name: (mesh.ca_dir / name).read_bytes() for name in FILES
             if (mesh.ca_dir / name).exists()}  # fmt: skip
    issuer = load_issuer(CaMaterial.from_files(files))
    identity = SpiffeId("cluster.local", namespace, account)
    key = generate_key(KeySpec())
    csr = build_csr(key, identity.uri).decode()
    issued = sign_workload(csr, identity, timedelta(hours=1), datetime.now(UTC), issuer,
                           SigningPolicy())  # fmt: skip
    assert isinstance(issued, Issued), issued
    chain, key_file = into / f"{namespace}-{account}.pem", into / f"{namespace}-{account}.key"
    chain.write_text("".join(issued.chain_pem))
    key_file.write_bytes(private_key_pem(key))
    return Credential(identity.uri, chain, key_file)


@pytest.fixture
def credentials(mtls_mesh: MtlsMesh, tmp_path: Path) -> dict[str, Credential]:
    return {
        "same-namespace": _credential(mtls_mesh, NAMESPACE, "intruder", tmp_path),
        "other-namespace": _credential(mtls_mesh, "other", "client", tmp_path),
    }


def test_a_claim_the_peer_certificate_contradicts_is_not_reported(
    mtls_mesh: MtlsMesh, credentials: dict[str, Credential]
) -> None:
    """A process holding a real mesh certificate (not the client's) speaks mTLS straight to
    the server's sidecar and claims, in the peer header, to be the `client` workload (its
    namespace and service account). The principal wins: the server reports the certificate's
    principal and namespace, and no label of the claim."""
    mesh = mtls_mesh
    _converge(mesh, peer_authentication("all", "STRICT"), plain_served=False)
    claim = Peer("client", NAMESPACE, "client", "unknown", "client", "latest", "Kubernetes",
                 "client").encode()  # fmt: skip
    root = str(mesh.ca_dir / "root-cert.pem")
    url = f"https://{mesh.server.ip}:8080/"
    name = "istio_requests_total"
    for case, credential in credentials.items():
        server = Counted.start(mesh, mesh.server)
        for _ in range(2):
            result = mesh.probe(mesh.plain, "mtls-get", url, root, str(credential.chain),
                                str(credential.key), f"--header=x-mizzen-peer:{claim}")  # fmt: skip
            assert result.get("status") == 200, (case, result, mesh.diagnostics())
        eventually(lambda s=server: s.total(name) == 2, f"{case}: 2 requests counted",
                   lambda s=server: s.samples(name))  # fmt: skip
        namespace = credential.uri.split("/")[4]
        reported = {
            "reporter": "destination", "connection_security_policy": "mutual_tls",
            "source_principal": credential.uri, "source_workload_namespace": namespace,
            "source_workload": "unknown", "source_app": "unknown",
            "source_canonical_service": "unknown", "destination_principal": spiffe("server"),
        }  # fmt: skip
        assert server.total(name, **reported) == 2, (case, server.samples(name))


def test_tcp_under_mutual_tls_has_principals_on_both_reporters(mtls_mesh: MtlsMesh) -> None:
    """Each request is a TCP connection through the sidecars (the Service names the port
    TCP): opened and closed counted once per reporter; without a metadata exchange on TCP the
    server knows the source only from the certificate (namespace and principal); the bytes
    are counted at close, the same on both reporters."""
    mesh = mtls_mesh
    _converge(mesh, peer_authentication("all", "STRICT"), plain_served=False)
    client, server = Counted.start(mesh, mesh.client), Counted.start(mesh, mesh.server)
    connections = 4
    sent = send_requests(mesh.client, SERVER_TCP, connections)
    assert sent.statuses == {"200": connections}, sent
    tcp = {"request_protocol": "tcp", **_principals(), **_server()}
    source = {**tcp, **_client(), "reporter": "source", "connection_security_policy": "unknown"}
    destination = {
        **tcp, "reporter": "destination", "connection_security_policy": "mutual_tls",
        "source_workload": "unknown", "source_workload_namespace": NAMESPACE,
        "source_canonical_revision": "latest",
    }  # fmt: skip
    closed = "istio_tcp_connections_closed_total"

    def both_closed() -> bool:
        return client.total(closed, **source) == server.total(closed, **destination) == connections

    eventually(both_closed, "both reporters counted every connection closed",
               lambda: (client.samples(closed), server.samples(closed)))  # fmt: skip
    opened = "istio_tcp_connections_opened_total"
    assert client.total(opened, **source) == connections, client.samples(opened)
    assert server.total(opened, **destination) == connections, server.differences(
        opened, **destination
    )
    for counter in ("istio_tcp_sent_bytes_total", "istio_tcp_received_bytes_total"):
        on_client, on_server = client.total(counter, **source), server.total(counter, **destination)
        assert on_client == on_server > 0, (counter, on_client, on_server)


def test_a_refused_plaintext_tcp_connection_is_not_mutual_tls(mtls_mesh: MtlsMesh) -> None:
    """Plaintext to a STRICT TCP port: the handshake fails on the mTLS chain, which still logs
    the close. Istio's rule (both certificates known) makes it `none` with no principal; it
    never reached the app, so it was never counted opened."""
    mesh = mtls_mesh
    _converge(mesh, peer_authentication("all", "STRICT"), plain_served=False)
    server = Counted.start(mesh, mesh.server)
    for _ in range(2):
        refused = mesh.get(mesh.plain, f"http://{mesh.server.ip}:7070/")
        assert "status" not in refused, refused
    closed = "istio_tcp_connections_closed_total"
    eventually(lambda: server.total(closed) == 2, "2 connections counted closed",
               lambda: server.samples(closed))  # fmt: skip
    assert server.total(closed, connection_security_policy="none", source_principal="unknown",
                        source_workload="unknown") == 2, server.samples(closed)  # fmt: skip
    assert server.total("istio_tcp_connections_opened_total") == 0
