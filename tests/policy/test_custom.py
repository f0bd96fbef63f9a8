"""CUSTOM AuthorizationPolicy -> ext_authz on a real Envoy, with a real HTTP authorization
server: called only for the requests the CUSTOM rules match; its answer decides; a provider
that is down fails closed (failOpen false by default); a provider that does not exist denies
what its policies match."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from control.config.mesh_config import MeshConfig
from tests.policy.envoy_harness import (
    PolicyEnvoy,
    Request,
    Slot,
    _static_cluster,
    free_port,
    inbound_policy,
    run_policy_envoy,
    send,
)
from tests.policy.pki import MeshCA

pytestmark = pytest.mark.envoy
AUTHZ_HOST = "authz.foo.svc.cluster.local"


class _Authz(http.server.BaseHTTPRequestHandler):
    calls: list[str] = []

    def do_GET(self) -> None:
        _Authz.calls.append(self.path)
        allowed = self.headers.get("x-allow") == "yes"
        self.send_response(200 if allowed else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _policy(provider: str) -> dict[str, Any]:
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "ext", "namespace": "foo"},
            "spec": {"action": "CUSTOM", "provider": {"name": provider},
                     "rules": [{"to": [{"operation": {"paths": ["/secure*"]}}]}]}}  # fmt: skip


@pytest.fixture(scope="module")
def envoy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyEnvoy]:
    workdir = tmp_path_factory.mktemp("policy-custom")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Authz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mesh = MeshConfig.from_mapping({"extensionProviders": [
        {"name": "up", "envoyExtAuthzHttp": {
            "service": f"foo/{AUTHZ_HOST}", "port": 9000,  # Istio's <namespace>/<hostname>
            "includeRequestHeadersInCheck": ["x-allow"]}},
        {"name": "down", "envoyExtAuthzHttp": {"service": AUTHZ_HOST, "port": 9001}},
        # Istio's `<namespace>/<hostname>`: a short name is no hostname (the provider is unknown).
        {"name": "short", "envoyExtAuthzHttp": {"service": "foo/authz", "port": 9000}},
    ]})  # fmt: skip
    known = frozenset({AUTHZ_HOST})
    slots = [Slot(name, inbound_policy([_policy(name)], mesh=mesh, known_hosts=known))
             for name in ("up", "down", "missing", "short")]  # fmt: skip
    clusters = [
        _static_cluster(f"outbound|9000||{AUTHZ_HOST}", server.server_address[1]),
        _static_cluster(f"outbound|9001||{AUTHZ_HOST}", free_port()),  # nobody listens
    ]
    try:
        with run_policy_envoy(slots, MeshCA(workdir), workdir, clusters) as running:
            yield running
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("slot", "path", "headers", "expect", "asked"),
    [
        ("up", "/public", (), 200, False),  # not matched by the CUSTOM rule: never asked
        ("up", "/secure", (), 403, True),
        ("up", "/secure", (("x-allow", "yes"),), 200, True),
        ("down", "/secure", (("x-allow", "yes"),), 403, False),  # fails closed
        ("down", "/public", (), 200, False),
        ("missing", "/secure", (("x-allow", "yes"),), 403, False),  # undefined provider
        ("missing", "/public", (), 200, False),
        ("short", "/secure", (("x-allow", "yes"),), 403, False),  # `foo/authz`: not found
        ("short", "/public", (), 200, False),
    ],
)
def test_custom(
    envoy: PolicyEnvoy, slot: str, path: str, headers: Any, expect: int, asked: bool
) -> None:
    before = len(_Authz.calls)
    outcome = send(envoy, slot, Request(path, headers=headers))
    assert outcome.status == expect
    assert (len(_Authz.calls) > before) == asked
