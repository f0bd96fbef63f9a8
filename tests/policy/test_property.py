"""Property: for random policy sets and requests, the decision of a real Envoy running mizzen's
translation equals the reference evaluator's (Istio's documented semantics). Each example is a
batch (many policy sets, one listener each, in one Envoy; several requests per set), so few
Envoy starts check many decisions; HTTP and TCP ports both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control.plane.model.build import build_state
from control.plane.model.state import Document
from tests.policy import reference
from tests.policy.envoy_harness import Request, Slot, inbound_policy, run_policy_envoy, send
from tests.policy.pki import MeshCA

pytestmark = [pytest.mark.envoy, pytest.mark.slow]

PRINCIPALS = ["cluster.local/ns/bar/sa/client", "cluster.local/ns/a.b/sa/x",
              "cluster.local/ns/aXb/sa/x", "cluster.local/ns/foo/sa/web"]  # fmt: skip
PRINCIPAL_PATTERNS = [
    *PRINCIPALS,
    "cluster.local/ns/bar/*",
    "*/sa/x",
    "*",
    "cluster.local/ns/a.b/*",
]
NAMESPACES = ["bar", "foo", "ba*", "*o", "*"]
PATHS = ["/", "/admin", "/admin/x", "/api/v1", "/img/a.png"]
PATH_PATTERNS = ["/admin", "/admin/*", "/api/*", "*.png", "*", "/"]
METHODS = ["GET", "POST", "DELETE"]
IPS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
BLOCKS = ["127.0.0.2/32", "127.0.0.0/31", "127.0.0.0/8"]


def _some(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)


@st.composite
def sources(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "principals": _some(PRINCIPAL_PATTERNS), "notPrincipals": _some(PRINCIPAL_PATTERNS),
        "namespaces": _some(NAMESPACES), "notNamespaces": _some(NAMESPACES),
        "ipBlocks": _some(BLOCKS), "notIpBlocks": _some(BLOCKS),
        "serviceAccounts": _some(["bar/client", "web", "foo/web"]),
    }  # fmt: skip
    keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2, unique=True))
    exclusive = {"principals", "notPrincipals", "namespaces", "notNamespaces"}
    if "serviceAccounts" in keys and exclusive & set(keys):
        keys.remove("serviceAccounts")  # Istio refuses it beside (not)principals/namespaces
    return {key: draw(fields[key]) for key in keys}


@st.composite
def operations(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "paths": _some(PATH_PATTERNS), "notPaths": _some(PATH_PATTERNS),
        "methods": _some(METHODS), "notMethods": _some(METHODS),
        "hosts": _some(["httpbin.foo.svc.cluster.local", "*.example", "HTTPBIN*"]),
    }  # fmt: skip
    keys = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2, unique=True))
    return {key: draw(fields[key]) for key in keys}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    key = draw(st.sampled_from(["request.headers[x-env]", "source.namespace", "source.ip"]))
    vocabulary = {"request.headers[x-env]": ["prod", "dev", "p*"], "source.namespace": NAMESPACES,
                  "source.ip": BLOCKS}[key]  # fmt: skip
    which = draw(st.sampled_from(["values", "notValues"]))
    return {"key": key, which: draw(_some(vocabulary))}


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["from"] = [{"source": s} for s in draw(st.lists(sources(), min_size=1, max_size=2))]
    if draw(st.booleans()):
        rule["to"] = [
            {"operation": o} for o in draw(st.lists(operations(), min_size=1, max_size=2))
        ]
    if draw(st.integers(0, 3)) == 0:
        rule["when"] = [draw(conditions())]
    return rule


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 3))
    out = []
    for index in range(count):
        action = draw(st.sampled_from(["ALLOW", "DENY", "AUDIT"]))
        spec: dict[str, Any] = {"action": action}
        spec["rules"] = draw(st.lists(rules(), min_size=1 if action != "ALLOW" else 0, max_size=3))
        metadata: dict[str, Any] = {"name": f"p{index}", "namespace": "foo"}
        # Istio allows the dry-run annotation on ALLOW and DENY policies only.
        if action != "AUDIT" and draw(st.integers(0, 5)) == 0:
            metadata["annotations"] = {"istio.io/dry-run": "true"}
        out.append({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                    "metadata": metadata, "spec": spec})  # fmt: skip
    return out


@st.composite
def requests(draw: st.DrawFn) -> tuple[Request, bool]:
    headers = (("x-env", draw(st.sampled_from(["prod", "dev", "qa"]))),) if draw(
        st.booleans()) else ()  # fmt: skip
    request = Request(
        path=draw(st.sampled_from(PATHS)),
        method=draw(st.sampled_from(METHODS)),
        host=draw(st.sampled_from(["httpbin.foo.svc.cluster.local", "api.example"])),
        headers=headers,
        principal=draw(st.sampled_from([None, *PRINCIPALS])),
        source_ip=draw(st.sampled_from(IPS)),
    )
    return request, draw(st.booleans())


def _attributes(request: Request, tcp: bool, port: int) -> reference.Attributes:
    return reference.Attributes(
        tcp=tcp, principal=request.principal, source_ip=request.source_ip,
        destination_port=port, method=request.method, host=request.host, path=request.path,
        headers={k.lower(): v for k, v in request.headers},
    )  # fmt: skip


BATCH = 12
DECIDED: set[tuple[bool, bool]] = set()  # (allowed, tcp) seen by the property test


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(batch=st.lists(st.tuples(policy_sets(), st.lists(requests(), min_size=4, max_size=4)),
                      min_size=BATCH, max_size=BATCH))  # fmt: skip
def test_envoy_agrees_with_reference(tmp_path_factory: pytest.TempPathFactory, batch: Any) -> None:
    workdir: Path = tmp_path_factory.mktemp("policy-property")
    slots, expectations = [], []
    for index, (docs, reqs) in enumerate(batch):
        state = build_state([Document(f"p{index}", d) for d in docs])
        assert not [p for p in state.problems if p.severity == "error"], state.problems
        policies = [reference.Policy("foo", r.spec, r.annotations.get("istio.io/dry-run") == "true")
                    for r in state.other_config]  # fmt: skip
        policy = inbound_policy(docs)
        for tcp in (False, True):
            name = f"s{index}-{'tcp' if tcp else 'http'}"
            slots.append(Slot(name, policy, tcp=tcp))
        for request, tcp in reqs:
            expectations.append((f"s{index}-{'tcp' if tcp else 'http'}", request, tcp, policies))
    mismatches, seen = [], set()
    with run_policy_envoy(slots, MeshCA(workdir), workdir) as envoy:
        for name, request, tcp, policies in expectations:
            expected = reference.decide(policies, _attributes(request, tcp, envoy.ports[name]))
            outcome = send(envoy, name, request)
            allowed = outcome.status == 200
            seen.add((allowed, tcp))
            if not allowed:
                assert outcome.status in (403, None), outcome
            if allowed != expected:
                mismatches.append((name, request, outcome.status, expected))
    assert not mismatches, mismatches[:5]
    DECIDED.update(seen)


def test_the_examples_decided_both_ways() -> None:
    """Not vacuous: over the examples above, Envoy allowed and denied, on HTTP and TCP."""
    assert {(True, False), (False, False), (True, True), (False, True)} <= DECIDED
