"""The policy table through a real Envoy: every case's policies translated by mizzen, one
listener per distinct policy set (all in one Envoy), real mTLS clients with SPIFFE
certificates, real JWTs; each case's status checked, and (where the reference evaluator covers
the case) the evaluator's decision checked against the same expectation."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.state import Document
from control.plane.sources.jwks import JwksCache, locations
from tests.policy import jwt, reference
from tests.policy.envoy_harness import (
    PolicyEnvoy,
    Request,
    Slot,
    free_port,
    free_ports,
    inbound_policy,
    run_policy_envoy,
    send,
)
from tests.policy.pki import MeshCA
from tests.policy.table import Case, documents, load

pytestmark = pytest.mark.envoy
CASES = load("table.yaml")
ISSUER = "https://issuer.example"
DRY_RUN = "istio.io/dry-run"


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class World:
    """Keys, tokens, a JWKS server and the Envoy holding every case's listener."""

    def __init__(self, workdir: Path) -> None:
        self.ca = MeshCA(workdir)
        self.key = jwt.SigningKey("k1")
        other = jwt.SigningKey("k2")
        valid = jwt.claims(ISSUER, "alice", "httpbin", groups=["admin", "dev"],
                           realm={"role": "owner"}, azp="web-app")  # fmt: skip
        self.tokens = {
            "valid": self.key.token(valid),
            "bob": self.key.token(jwt.claims(ISSUER, "bob", "httpbin")),
            "expired": self.key.token(jwt.claims(ISSUER, "alice", "httpbin", expires_in=-600)),
            "wrong-issuer": self.key.token(jwt.claims("https://other.example", "alice", "httpbin")),
            "wrong-audience": self.key.token(jwt.claims(ISSUER, "alice", "other")),
            "tampered": jwt.tamper(self.key.token(valid)),
            "unknown-kid": other.token(valid, kid="k2"),
            "scoped": self.key.token(
                jwt.claims(ISSUER, "carol", "httpbin", scope="read write", roles="ops dev")
            ),
        }
        _JwksHandler.body = jwt.jwks(self.key).encode()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.names = {
            "jwks": jwt.jwks(self.key),
            "jwks_uri": f"http://127.0.0.1:{self.server.server_address[1]}/jwks",
            "jwks_unreachable": f"http://127.0.0.1:{free_port()}/jwks",
        }


def _mesh(case: Case) -> MeshConfig:
    return MeshConfig.from_mapping(case.mesh or {})


def _documents(case: Case, world: World, port: int) -> list[dict[str, Any]]:
    return documents(case, {**world.names, "port": str(port)})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, PolicyEnvoy]]:
    """Ports are chosen before translation, as policies may name `{port}`."""
    workdir = tmp_path_factory.mktemp("policy-table")
    world = World(workdir)
    ports = dict(zip([c.name for c in CASES], free_ports(len(CASES)), strict=True))
    cache = JwksCache(refresh=3600, retry=3600)
    slots = []
    for case in CASES:
        docs = _documents(case, world, ports[case.name])
        state = build_state([Document(case.name, d) for d in docs])
        cache.update(locations(state))
        policy = inbound_policy(docs, mesh=_mesh(case), jwks=dict(cache.documents))
        slots.append(Slot(case.name, policy, tcp=case.port == "tcp", port=ports[case.name]))
    with run_policy_envoy(slots, world.ca, workdir) as envoy:
        yield world, envoy
    world.server.shutdown()
    world.server.server_close()


def _request(case: Case, world: World) -> Request:
    spec = case.request
    headers = dict(spec.get("headers", {}))
    token = spec.get("jwt")
    if token:
        name = spec.get("jwt_header", "authorization")
        headers[name] = spec.get("jwt_prefix", "Bearer ") + world.tokens[token]
    return Request(
        path=spec.get("path", "/"),
        method=spec.get("method", "GET"),
        host=spec.get("host", "httpbin.foo.svc.cluster.local"),
        headers=tuple(headers.items()),
        principal=spec.get("principal"),
        source_ip=spec.get("source_ip", "127.0.0.1"),
        sni=spec.get("sni"),
    )


def _reference(case: Case, world: World, port: int) -> bool | None:
    """The evaluator's decision, or None where it does not apply (JWT validation itself)."""
    docs = _documents(case, world, port)
    if any(d["kind"] != "AuthorizationPolicy" for d in docs):
        return None
    state = build_state([Document(case.name, d) for d in docs])
    labels = {"app": "httpbin"}
    policies = [
        reference.Policy(r.namespace or "foo", r.spec, r.annotations.get(DRY_RUN) == "true")
        for r in state.other_config
        if r.namespace in ("foo", "istio-system")
        and (r.spec.selector is None
             or all(labels.get(k) == v for k, v in r.spec.selector.match_labels.items()))
    ]  # fmt: skip
    req = case.request
    headers = {k.lower(): v for k, v in req.get("headers", {}).items()}
    xff = headers.get("x-forwarded-for")
    attrs = reference.Attributes(
        tcp=case.port == "tcp", principal=req.get("principal"),
        source_ip=req.get("source_ip", "127.0.0.1"), remote_ip=xff,
        destination_port=port, sni=req.get("sni"), method=req.get("method", "GET"),
        host=req.get("host", "httpbin.foo.svc.cluster.local"),
        path=req.get("path", "/").split("?")[0], headers=headers,
    )  # fmt: skip
    mesh = _mesh(case)
    return reference.decide(policies, attrs, (mesh.trust_domain, *mesh.trust_domain_aliases))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(case: Case, world: tuple[World, PolicyEnvoy]) -> None:
    state, envoy = world
    outcome = send(envoy, case.name, _request(case, state))
    got: int | str = "closed" if outcome.closed else outcome.status or 0
    assert got == case.expect, f"{case.name}: {got} ({outcome.body[:80]!r}), expected {case.expect}"
    if got == 403 and not case.request.get("jwt"):
        assert outcome.body == "RBAC: access denied"
    decided = _reference(case, state, envoy.ports[case.name])
    if decided is not None and case.expect in (200, 403, "closed"):
        assert decided == (case.expect == 200), f"reference evaluator disagrees on {case.name}"


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
