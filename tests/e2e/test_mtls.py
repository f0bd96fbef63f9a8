"""Mutual TLS between sidecars on the wire: real Envoys, certificates from the real CA, pods in
network namespaces (`mtls_mesh`). PeerAuthentication per namespace, workload and port;
DestinationRule TLS; auto-mTLS per endpoint; XFCC as the app sees it."""

from __future__ import annotations

import re
import time

import pytest

from control.cli.demo.mesh import stream_requests
from tests.e2e.mtls_mesh import (
    MIXED_VIP,
    SERVER_VIP,
    TLS_APP_ID,
    MtlsMesh,
    destination_rule,
    peer_authentication,
    spiffe,
)

pytestmark = [pytest.mark.netns, pytest.mark.envoy]

SERVER = f"http://{SERVER_VIP}:80/"
SERVER_ALT = f"http://{SERVER_VIP}:90/"
MIXED = f"http://{MIXED_VIP}:80/"
CLIENT_PRINCIPAL = "cluster.local/ns/secure/sa/client"
FORGED = "By=spiffe://evil/x;URI=spiffe://cluster.local/ns/secure/sa/forged"


def _direct(mesh: MtlsMesh, port: int = 8080) -> str:
    return f"http://{mesh.server.ip}:{port}/"


def _served(result: dict[str, object]) -> bool:
    return result.get("status") == 200


def _apply(mesh: MtlsMesh, *documents: dict[str, object], plain_served: dict[int, bool]) -> None:
    """Writes the policies and waits until a plaintext client sees the expected outcome on
    each port of the server pod (the proof that the server's Envoy has the new chains)."""
    mesh.set_policies(*documents)
    for port, served in plain_served.items():
        mesh.until(
            lambda p=port, s=served: _served(mesh.get(mesh.plain, _direct(mesh, p))) is s,
            f"plaintext to :{port} {'served' if served else 'refused'}",
        )


def test_meshed_traffic_is_mutual_tls_and_the_app_sees_the_callers_spiffe_id(
    mtls_mesh: MtlsMesh,
) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={8080: True})
    before = mesh.stat(mesh.client, r"^cluster\.outbound\|80\|\|server\..*\.ssl\.handshake$")
    result = mesh.get(mesh.client, SERVER, **{"x-forwarded-client-cert": FORGED})
    assert result["status"] == 200, result
    assert result["version"] == "server"
    xfcc = str(result["xfcc"])
    # Istio's sidecars' form, exactly: the mesh certificates have an empty subject, no DNS name
    server, client = re.escape(spiffe("server")), re.escape(spiffe("client"))
    istio_form = rf'By={server};Hash=[0-9a-f]{{64}};Subject="";URI={client}'
    assert re.fullmatch(istio_form, xfcc), xfcc
    assert "forged" not in xfcc  # the client app's header never arrives
    assert "evil" not in xfcc
    after = mesh.stat(mesh.client, r"^cluster\.outbound\|80\|\|server\..*\.ssl\.handshake$")
    assert after > before  # the client's Envoy did a TLS handshake to the server
    # A plain process dialling the server pod with a mesh ALPN meets the server's certificate.
    root = str(mesh.ca_dir / "root-cert.pem")
    seen = mesh.probe(mesh.plain, "tls", mesh.server.ip, "8080", root, "--alpn=istio")
    assert seen.get("uris") == [spiffe("server")], seen


def test_permissive_serves_plaintext_and_drops_a_forged_xfcc(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={8080: True})
    result = mesh.get(mesh.plain, _direct(mesh), **{"x-forwarded-client-cert": FORGED})
    assert result["status"] == 200, result
    assert result["xfcc"] == ""  # no client certificate: Envoy removes the header


def test_strict_refuses_plaintext_and_serves_the_mesh(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    _apply(mesh, peer_authentication("all", "STRICT"), plain_served={8080: False, 9090: False})
    refused = mesh.get(mesh.plain, _direct(mesh))
    assert "status" not in refused, refused  # closed without an HTTP answer from the app
    for url in (SERVER, SERVER_ALT):
        result = mesh.get(mesh.client, url)
        assert result["status"] == 200, (url, result)
        assert f"URI={spiffe('client')}" in str(result["xfcc"])


def test_disable_serves_plaintext_and_meshed_clients_follow(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    _apply(mesh, peer_authentication("all", "DISABLE"), plain_served={8080: True, 9090: True})
    result = mesh.get(mesh.client, SERVER)
    assert result["status"] == 200, result  # auto-mTLS sends plaintext to a DISABLE port
    assert result["xfcc"] == ""


def test_workload_over_namespace_and_port_level_over_workload(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    namespace = peer_authentication("all", "STRICT")
    workload = peer_authentication("server", "PERMISSIVE", {"app": "server"})
    _apply(mesh, namespace, workload, plain_served={8080: True, 9090: True})
    port_level = peer_authentication("server", "STRICT", {"app": "server"}, {8080: "DISABLE"})
    _apply(mesh, namespace, port_level, plain_served={8080: True, 9090: False})
    on_8080, on_9090 = mesh.get(mesh.client, SERVER), mesh.get(mesh.client, SERVER_ALT)
    assert on_8080["status"] == 200, on_8080
    assert on_8080["xfcc"] == ""  # DISABLE port: the client's auto-mTLS chose plaintext
    assert on_9090["status"] == 200, on_9090
    assert f"URI={spiffe('client')}" in str(on_9090["xfcc"])


def test_destination_rule_disable_against_strict_fails_as_in_istio(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    strict = peer_authentication("all", "STRICT")
    _apply(mesh, strict, destination_rule("DISABLE"), plain_served={8080: False})
    mesh.until(lambda: mesh.get(mesh.client, SERVER).get("status") == 503, "a 503 to the client")
    _apply(mesh, strict, destination_rule("ISTIO_MUTUAL"), plain_served={8080: False})
    mesh.until(lambda: _served(mesh.get(mesh.client, SERVER)), "ISTIO_MUTUAL served")
    assert f"URI={spiffe('client')}" in str(mesh.get(mesh.client, SERVER)["xfcc"])


def test_auto_mtls_to_the_injected_endpoint_plaintext_to_the_plain_one(
    mtls_mesh: MtlsMesh,
) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={8080: True})
    # `_apply` proves the server's chains; the client's clusters may still carry an earlier
    # test's DestinationRule for `mixed` (ISTIO_MUTUAL to every endpoint) for a moment.
    mesh.until(
        lambda: mesh.get(mesh.client, MIXED).get("version") == "plain",
        "the client's sidecar reaches the plain endpoint",
    )
    results = [mesh.get(mesh.client, MIXED) for _ in range(16)]
    assert all(r.get("status") == 200 for r in results), results
    by_version = {str(r["version"]) for r in results}
    assert by_version == {"server", "plain"}, results
    for result in results:
        if result["version"] == "server":
            assert f"URI={spiffe('client')}" in str(result["xfcc"]), result
        else:  # straight from the client's sidecar, in plaintext
            assert result["xfcc"] == ""
            assert result["peer"] == mesh.client.ip


def test_permissive_strict_permissive_under_traffic_loses_no_request(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={8080: True})
    stream = stream_requests(mesh.client, SERVER, duration=120)
    stream.wait_started()
    time.sleep(1)
    _apply(mesh, peer_authentication("all", "STRICT"), plain_served={8080: False})
    time.sleep(1)
    _apply(mesh, plain_served={8080: True})
    time.sleep(1)
    results = stream.stop()
    failures = [r for r in results if r.get("status") != 200]
    assert len(results) > 20
    assert failures == [], failures[:5]


def test_tcp_through_mtls_and_strict_on_a_tcp_port(mtls_mesh: MtlsMesh) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={7070: True})
    handshakes = r"^cluster\.outbound\|70\|\|server\..*\.ssl\.handshake$"
    before = mesh.stat(mesh.client, handshakes)
    result = mesh.get(mesh.client, f"http://{SERVER_VIP}:70/")
    assert result["status"] == 200, result
    assert result["version"] == "server-tcp"
    assert mesh.stat(mesh.client, handshakes) > before  # the TCP bytes went over mTLS
    _apply(mesh, peer_authentication("all", "STRICT"), plain_served={7070: False})
    assert mesh.get(mesh.client, f"http://{SERVER_VIP}:70/")["status"] == 200


def test_an_app_serving_tls_itself_on_a_permissive_port_is_passed_through(
    mtls_mesh: MtlsMesh,
) -> None:
    mesh = mtls_mesh
    _apply(mesh, plain_served={8080: True})
    root = str(mesh.ca_dir.parent / "tls-app.pem")
    seen = mesh.probe(mesh.plain, "tls", mesh.server.ip, "8443", root)
    assert seen.get("uris") == [TLS_APP_ID], seen  # the app's own certificate, not the sidecar's


def test_kubelet_style_probes_pass_under_strict(mtls_mesh: MtlsMesh) -> None:
    """The kubelet (here the plain pod) asks the agent on 15020; the agent reaches the app from
    127.0.0.6, which the inbound capture leaves alone: STRICT does not fail the probes."""
    mesh = mtls_mesh
    _apply(mesh, peer_authentication("all", "STRICT"), plain_served={8080: False, 9090: False})
    for kind in ("readyz", "livez"):
        result = mesh.get(mesh.plain, f"http://{mesh.server.ip}:15020/app-health/app/{kind}")
        assert result["status"] == 200, (kind, result)


def test_a_principal_in_an_authorization_policy_is_the_mtls_peer(mtls_mesh: MtlsMesh) -> None:
    """`principals` match the client certificate's SPIFFE id: the meshed client is allowed, a
    plaintext client (no certificate, so no principal) is denied by RBAC."""
    mesh = mtls_mesh
    allow = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "only-client", "namespace": "secure"},
        "spec": {
            "selector": {"matchLabels": {"app": "server"}},
            "action": "ALLOW",
            "rules": [
                {"from": [{"source": {"principals": ["cluster.local/ns/secure/sa/client"]}}]}
            ],
        },
    }
    mesh.set_policies(allow)
    mesh.until(lambda: mesh.get(mesh.plain, _direct(mesh)).get("status") == 403, "plain denied")
    assert mesh.get(mesh.client, SERVER)["status"] == 200
    _apply(mesh, plain_served={8080: True})


def test_istio_mutual_to_a_plain_endpoint_fails_and_never_downgrades(mtls_mesh: MtlsMesh) -> None:
    """A DestinationRule ISTIO_MUTUAL on the mixed Service: the handshakes with the plain
    endpoint fail (Istio's default retry then picks another host), so every answer comes from
    the injected endpoint over mTLS; the plain one never gets plaintext."""
    mesh = mtls_mesh
    _apply(mesh, destination_rule("ISTIO_MUTUAL", "mixed"), plain_served={8080: True})
    failed = r"^cluster\.outbound\|80\|\|mixed\..*\.ssl\.connection_error$"
    before = mesh.stat(mesh.client, failed)

    def settled() -> bool:
        results = [mesh.get(mesh.client, MIXED) for _ in range(12)]
        return all(r.get("version") == "server" and r.get("xfcc") for r in results)

    mesh.until(settled, "every answer from the injected endpoint, over mTLS")
    assert mesh.stat(mesh.client, failed) > before  # the plain endpoint was tried, over TLS
    _apply(mesh, plain_served={8080: True})
