"""The pure policy translation, without Envoy: matchers, Istio's TCP rules, selection,
refusals, JWT providers, path settings, the hook into the sidecar's inbound listener; and the
JWKS fetcher over an in-process HTTP transport."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx
import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.jwks import JwksDocument
from control.plane.model.state import Document
from control.plane.sources.jwks import MAX_BYTES, JwksCache, locations
from control.plane.xds.translate.authz import matchers, select
from control.plane.xds.translate.authz.authn import UNAVAILABLE_JWKS
from control.plane.xds.translate.authz.inbound import MeshPolicies
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.shared import MeshTranslation


def _policy(name: str, spec: dict[str, Any], namespace: str = "foo", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": meta.pop("kind", "AuthorizationPolicy"),
        "metadata": {"name": name, "namespace": namespace, **meta},
        "spec": spec,
    }


def _inbound(docs: list[dict[str, Any]], labels: dict[str, str] | None = None, **mesh: Any) -> Any:
    state = build_state(
        [Document(str(i), d) for i, d in enumerate(docs)], MeshConfig.from_mapping(mesh)
    )
    assert not [p for p in state.problems if p.severity == "error"], state.problems
    return MeshPolicies(state, lambda h: False).for_workload("foo", labels or {"app": "a"})


@given(st.text(max_size=40))
def test_escaped_text_matches_only_itself(text: str) -> None:
    pattern = re2.compile(matchers.re2_escape(text))
    assert pattern.fullmatch(text)
    if text:
        assert not pattern.fullmatch(text + "x")


def test_dot_in_a_namespace_or_account_is_literal() -> None:
    account = matchers.service_account_regex("a.b/sa.x", "foo")["safe_regex"]["regex"]
    assert re2.fullmatch(account, "spiffe://td/ns/a.b/sa/sa.x")
    assert not re2.fullmatch(account, "spiffe://td/ns/aXb/sa/saXx")
    prefix = matchers.namespace_regex("b.*")["safe_regex"]["regex"]
    assert re2.fullmatch(prefix, "td/ns/b.x/sa/y")
    assert not re2.fullmatch(prefix, "td/ns/bXx/sa/y")


def _rules(filters: list[dict[str, Any]], index: int) -> dict[str, Any]:
    rules: dict[str, Any] = filters[index]["typed_config"]["rules"]
    return rules


def test_tcp_allow_with_http_field_skips_the_rule_and_denies() -> None:
    policy = _inbound([_policy("p", {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})])
    network = policy.network_filters()
    assert _rules(network, 0) == {"action": "ALLOW", "policies": {}}  # nothing can match
    assert _rules(policy.http_filters(), 0)["policies"]  # on HTTP the rule is there


def test_tcp_deny_drops_only_the_http_condition() -> None:
    spec = {
        "action": "DENY",
        "rules": [
            {
                "from": [{"source": {"principals": ["td/ns/x/sa/y"]}}],
                "to": [{"operation": {"methods": ["POST"]}}],
            }
        ],
    }
    rule = _rules(_inbound([_policy("p", spec)]).network_filters(), 0)["policies"]
    (only,) = rule.values()
    assert only["permissions"] == [{"and_rules": {"rules": [{"any": True}]}}]  # widened
    principal = only["principals"][0]["and_ids"]["ids"][0]
    assert principal == {"authenticated": {"principal_name": {"exact": "spiffe://td/ns/x/sa/y"}}}


def test_filter_order_and_dry_run() -> None:
    docs = [
        _policy("audit", {"action": "AUDIT", "rules": [{}]}),
        _policy(
            "deny", {"action": "DENY", "rules": [{}]}, annotations={"istio.io/dry-run": "true"}
        ),
        _policy("allow", {"rules": [{}]}),
        _policy(
            "jwt",
            {"jwtRules": [{"issuer": "https://i.example", "jwksUri": "https://i.example/k"}]},
            kind="RequestAuthentication",
        ),
    ]
    filters = _inbound(docs).http_filters()
    assert [f["name"] for f in filters] == [
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.rbac",
        "envoy.filters.http.rbac",
        "envoy.filters.http.rbac",
    ]
    actions = [
        f["typed_config"].get("rules", f["typed_config"].get("shadow_rules"))["action"]
        for f in filters[1:]
    ]
    assert actions == ["LOG", "DENY", "ALLOW"]
    assert "rules" not in filters[2]["typed_config"]  # dry-run: shadow only, never enforced
    assert filters[2]["typed_config"]["shadow_rules_stat_prefix"] == "istio_dry_run_deny_"
    provider = filters[0]["typed_config"]["providers"]["origins-0"]
    assert provider["local_jwks"]["inline_string"] == UNAVAILABLE_JWKS  # never fetched


def test_selection_root_namespace_selector_and_other_namespaces() -> None:
    docs = [
        _policy("mesh", {"action": "DENY", "rules": [{}]}, namespace="istio-system"),
        _policy("mine", {"selector": {"matchLabels": {"app": "a"}}, "rules": [{}]}),
        _policy("theirs", {"selector": {"matchLabels": {"app": "b"}}, "rules": [{}]}),
        _policy("elsewhere", {"rules": [{}]}, namespace="bar"),
    ]
    names = [p.name for p in _inbound(docs).authorization]
    assert names == ["mesh", "mine"]


def test_target_ref_is_refused_with_a_message() -> None:
    doc = _policy("p", {"targetRef": {"kind": "Service", "group": "", "name": "x"}, "rules": [{}]})
    state = build_state([Document("f.yaml", doc)])
    (problem,) = [p for p in state.problems if p.severity == "error"]
    assert "targetRef" in problem.message
    assert "not applied" in problem.message
    assert not state.other_config


def test_path_settings_per_mode() -> None:
    assert _inbound([], pathNormalization={"normalization": "NONE"}).hcm_options() == {
        "normalize_path": False
    }
    decode = _inbound([], pathNormalization={"normalization": "DECODE_AND_MERGE_SLASHES"})
    assert decode.hcm_options()["path_with_escaped_slashes_action"] == "UNESCAPE_AND_FORWARD"


def _mesh_state(*extra: dict[str, Any]) -> Any:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "a", "namespace": "foo"},
            "spec": {
                "selector": {"app": "a"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080},
                    {"name": "tcp", "port": 90},
                ],
            },
        },
        *[
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"a-{i}", "namespace": "foo", "labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"podIP": f"10.1.0.{i}"},
            }
            for i in (1, 2)
        ],
        *extra,
    ]
    return build_state([Document(str(i), d) for i, d in enumerate(docs)])


def _chain_filters(resources: Any, port: int) -> list[str]:
    dump = resources.to_json()["lds"]
    (inbound,) = [x for x in dump if x["name"] == "virtualInbound"]
    (chain,) = [c for c in inbound["filter_chains"] if c["name"] == f"inbound|{port}||"]
    names = [f["name"] for f in chain["filters"]]
    if names == ["envoy.filters.network.http_connection_manager"]:
        return [f["name"] for f in chain["filters"][0]["typed_config"]["http_filters"]]
    return names


def test_hooked_into_the_inbound_chains_and_shared_by_replicas() -> None:
    deny = _policy(
        "deny", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/x"]}}]}]}
    )
    state = _mesh_state(deny)
    proxy = parse_node("sidecar~10.1.0.1~a-1.foo~foo.svc.cluster.local")
    resources = translate(state, proxy)
    assert _chain_filters(resources, 8080) == [
        "envoy.filters.http.header_to_metadata",  # telemetry's peer metadata, first
        "envoy.filters.http.rbac",
        "envoy.filters.http.router",
    ]
    assert _chain_filters(resources, 90) == [
        "envoy.filters.network.rbac",
        "envoy.filters.network.tcp_proxy",
    ]
    shared = MeshTranslation(state)
    other = parse_node("sidecar~10.1.0.2~a-2.foo~foo.svc.cluster.local")
    assert shared.for_proxy(proxy) is shared.for_proxy(other)  # one translation for replicas
    edited = _mesh_state({**deny, "spec": {"action": "DENY", "rules": [{}]}})
    following, _ = shared.successor(edited)
    assert following.for_proxy(proxy) != shared.for_proxy(proxy)  # an edit re-translates
    assert _chain_filters(translate(_mesh_state(), proxy), 8080) == [
        "envoy.filters.http.header_to_metadata",
        "envoy.filters.http.router",
    ]


# The JWKS fetcher, over an in-process transport (httpx's own seam).

KEYS = {"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}


def _cache(handler: Any) -> JwksCache:
    clock = [0.0]
    cache = JwksCache(
        httpx.Client(transport=httpx.MockTransport(handler)),
        refresh=100,
        retry=10,
        clock=lambda: clock[0],
    )
    cache.tick = clock  # type: ignore[attr-defined]
    return cache


def _wanted(uri: str) -> dict[str, float]:
    doc = _policy(
        "j",
        {"jwtRules": [{"issuer": "https://i.example", "jwksUri": uri}]},
        kind="RequestAuthentication",
    )
    return locations(build_state([Document("j", doc)]))


def test_jwks_fetched_cached_and_kept_on_failure() -> None:
    answers = [httpx.Response(200, json=KEYS), httpx.Response(500)]
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return answers.pop(0)

    cache = _cache(handler)
    wanted = _wanted("https://i.example/keys")
    assert cache.update(wanted)
    good = cache.documents["https://i.example/keys"]
    assert good.error is None
    assert json.loads(good.keys or "") == KEYS
    assert not cache.update(wanted)
    assert len(calls) == 1
    cache.tick[0] = 101  # type: ignore[attr-defined]
    assert cache.update(wanted)
    failed = cache.documents["https://i.example/keys"]
    assert failed.keys == good.keys
    assert failed.error == "HTTP 500"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(200, content=b"x" * (MAX_BYTES + 1)), "larger than"),
        (httpx.Response(200, content=b"not json"), "not JSON"),
        (httpx.Response(200, json={"keys": []}), "not a JSON Web Key Set"),
        (httpx.Response(404), "HTTP 404"),
    ],
)
def test_jwks_refused(response: httpx.Response, error: str) -> None:
    cache = _cache(lambda request: response)
    cache.update(_wanted("https://i.example/keys"))
    document = cache.documents["https://i.example/keys"]
    assert document.keys is None
    assert error in (document.error or "")


def test_jwks_openid_discovery_when_no_uri() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("openid-configuration"):
            return httpx.Response(200, json={"jwks_uri": "https://i.example/certs"})
        return httpx.Response(200, json=KEYS)

    cache = _cache(handler)
    doc = _policy(
        "j", {"jwtRules": [{"issuer": "https://i.example"}]}, kind="RequestAuthentication"
    )
    cache.update(locations(build_state([Document("j", doc)])))
    (document,) = cache.documents.values()
    assert document.uri == "https://i.example/.well-known/openid-configuration"
    assert document.keys is not None
    assert isinstance(document, JwksDocument)


def test_fingerprint_once_per_parsed_spec_and_forgotten_with_it() -> None:
    """A spec (a frozen model) is fingerprinted once, however many states index it; the memo
    keeps no spec alive; equal specs parsed twice still share a fingerprint (their
    translations are shared)."""
    doc = _policy("p", {"rules": [{"to": [{"operation": {"methods": ["GET"]}}]}]})
    state = build_state([Document("0", doc)])
    (resource,) = state.other_config
    first = MeshPolicies(state, lambda h: False).for_workload("foo", {"app": "a"})
    calls: list[object] = []
    original = type(resource.spec).model_dump_json

    def counting(self: Any, **kwargs: Any) -> str:
        calls.append(self)
        return original(self, **kwargs)

    type(resource.spec).model_dump_json = counting  # type: ignore[method-assign]
    try:
        again = MeshPolicies(state, lambda h: False).for_workload("foo", {"app": "a"})
        other = _inbound([doc])  # the same document parsed anew: another spec object
    finally:
        type(resource.spec).model_dump_json = original  # type: ignore[method-assign]
    assert calls == [other.authorization[0].spec]  # only the new object was fingerprinted
    assert first.authorization == again.authorization == other.authorization
    key = id(other.authorization[0].spec)
    assert key in select._FINGERPRINTS
    calls.clear()
    del other
    gc.collect()
    assert key not in select._FINGERPRINTS
