"""Differential check (one-off, re-runnable): mizzen's AuthorizationPolicy translation against
the goldens of Istio's authorization builder (istio/istio,
`pilot/pkg/security/authz/builder/testdata`: `<case>-in.yaml` policies, `<case>-out*.yaml` the
RBAC filters Istio makes). For each case both filter sets run in one real Envoy, on the same
requests, and the *decisions* are compared, never the JSON.

Every RBAC policy (one per rule, named `ns[..]-policy[..]-rule[i]` by both) runs as a shadow
engine of its own (Envoy's stats tell whether it matched), whole and one condition at a time:
each child of a rule's AND (an attribute's values, or its notValues) is a probe of its own, so a
condition no loopback request can meet (a destination IP of 10.10.10.10) does not hide the
others. Per rule, the per-condition results of the two sides are compared as multisets of
result vectors (no pairing of the two JSON shapes is needed, and equal multisets give equal
ANDs). Requests are drawn (seeded) from the values the case's policies name, wildcards filled:
peer identities over mTLS, paths, methods, hosts, headers, signed JWTs (iss, sub, aud, azp,
claims), SNI; TCP cases connect over mTLS or plaintext.

    .venv/bin/python hack/compat/authz_differential.py \\
        <istio checkout>/pilot/pkg/security/authz/builder/testdata \\
        [--case NAME ...] [--requests 40] [--seed 1] [--verbose]

Istio's files are read from the given checkout, never copied into this repository. Exit status 1
when a decision differs."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from control.config.mesh_config import MeshConfig
from tests.policy import jwt
from tests.policy.envoy_harness import (
    PolicyEnvoy,
    Request,
    Slot,
    inbound_policy,
    run_policy_envoy,
    send,
)
from tests.policy.pki import MeshCA

Json = dict[str, Any]
_T = "type.googleapis.com/"


def jwt_filter(key: jwt.SigningKey) -> Json:
    """jwt_authn before every probe: any issuer, the test key, the payload in metadata where
    both sides' requestPrincipals and claims conditions read it; a request without a token
    passes."""
    provider = {
        "local_jwks": {"inline_string": jwt.jwks(key)},
        "payload_in_metadata": "payload",
        "forward": True,
    }
    requirement = {
        "requires_any": {"requirements": [{"provider_name": "any"}, {"allow_missing": {}}]}
    }
    config = {
        "@type": _T + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"any": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": requirement}],
    }
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": config}


EXT_AUTHZ_HOST = "my-custom-ext-authz.foo.svc.cluster.local"
_GRPC_PROVIDER = {
    "name": "default",
    "envoyExtAuthzGrpc": {
        "service": f"foo/{EXT_AUTHZ_HOST}",
        "port": 9000,
        "failOpen": True,
        "statusOnError": "403",
    },
}
_HTTP_PROVIDER = {"name": "default", "envoyExtAuthzHttp": {
    "service": f"foo/{EXT_AUTHZ_HOST}", "port": 9000, "failOpen": True, "statusOnError": "403",
    "pathPrefix": "/check"}}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One case of Istio's builder_test.go: the input, the expected filters, the settings."""

    name: str
    tcp: bool
    input: str
    want: tuple[str, ...]
    bundle: tuple[str, ...] = ()  # trust domain, then aliases (Istio's trustdomain.NewBundle)
    provider: Json | None = None  # MeshConfig extension provider (CUSTOM cases)


def _http(name: str, *want: str, **extra: Any) -> Case:
    return Case(name, False, f"{name}-in.yaml", want or (f"{name}-out.yaml",), **extra)


def _tcp(name: str, *want: str, **extra: Any) -> Case:
    return Case(name, True, f"{name}-in.yaml", want or (f"{name}-out.yaml",), **extra)


CASES: tuple[Case, ...] = (
    _http("allow-empty-rule"), _http("allow-full-rule"), _http("allow-nil-rule"),
    _http("allow-path"), _http("audit-full-rule"),
    _http("deny-and-allow", "deny-and-allow-out1.yaml", "deny-and-allow-out2.yaml"),
    _http("deny-empty-rule"),
    _http("dry-run-allow-and-deny", "dry-run-allow-and-deny-out1.yaml",
          "dry-run-allow-and-deny-out2.yaml"),
    _http("dry-run-allow"), _http("dry-run-mix"), _http("multiple-policies"),
    _http("single-policy"),
    Case("trust-domain-one-alias", False, "simple-policy-td-aliases-in.yaml",
         ("simple-policy-td-aliases-out.yaml",), ("td1", "cluster.local")),
    Case("trust-domain-multiple-aliases", False, "simple-policy-multiple-td-aliases-in.yaml",
         ("simple-policy-multiple-td-aliases-out.yaml",), ("td1", "cluster.local", "some-td")),
    Case("trust-domain-wildcard-in-principal", False,
         "simple-policy-principal-with-wildcard-in.yaml",
         ("simple-policy-principal-with-wildcard-out.yaml",), ("td1", "foobar")),
    Case("trust-domain-aliases-in-source-principal", False, "td-aliases-source-principal-in.yaml",
         ("td-aliases-source-principal-out.yaml",), ("new-td", "old-td", "some-trustdomain")),
    Case("custom-http-provider", False, "custom-simple-http-in.yaml",
         ("custom-http-provider-out1.yaml",), provider=_HTTP_PROVIDER),  # out2: ext_authz
    _tcp("allow-both-http-tcp"), _tcp("allow-only-http"), _tcp("audit-both-http-tcp"),
    _tcp("deny-both-http-tcp"), _tcp("dry-run-mix"),
    _tcp("custom-both-http-tcp", "custom-both-http-tcp-out1.yaml", provider=_GRPC_PROVIDER),
)  # fmt: skip


# -- engines and probes ---------------------------------------------------------------------


@dataclass
class Engine:
    """The policies of one RBAC rule set (enforced or shadow) of one side."""

    key: str  # action/enforcement (pairs Istio's engines with mizzen's)
    policies: dict[str, Json]  # normalised policy name -> policy


def _get(data: Json, snake: str) -> Any:
    """A field by its proto name or its JSON (camelCase) name."""
    if snake in data:
        return data[snake]
    head, *rest = snake.split("_")
    return data.get(head + "".join(part.title() for part in rest))


PEER_PRINCIPAL = "io.istio.peer_principal"
OLD_AUTHN = "istio_authn"  # Istio < 1.6: its own authn filter's metadata
_OLD_HEADER_FORMS = {
    "exactMatch": "exact", "prefixMatch": "prefix", "suffixMatch": "suffix",
    "exact_match": "exact", "prefix_match": "prefix", "suffix_match": "suffix",
}  # fmt: skip


def _spiffe(matcher: Json) -> Json:
    """A matcher of `<td>/ns/..` as one of the certificate's `spiffe://<td>/ns/..`."""
    out = dict(matcher)
    for key in ("exact", "prefix"):
        if key in out:
            out[key] = "spiffe://" + out[key]
    regex = _get(out, "safe_regex")
    if regex is not None:
        out.pop("safeRegex", None)
        out["safe_regex"] = {"regex": f"spiffe://(?:{regex['regex']})"}
    return out


def _portable(value: Any) -> Any:
    """Istio's output (of any of its versions) made runnable on a plain Envoy, meaning
    unchanged: `googleRe2: {}` is a deprecated no-op; a header's `exactMatch` (and prefix,
    suffix, safeRegex forms) is the deprecated spelling of its `stringMatch`; the filter state
    `io.istio.peer_principal` (set by istio-proxy's own filter) and old Istio's
    `istio_authn/source.principal` metadata hold the peer certificate's identity, which Envoy's
    `authenticated.principal_name` reads (with `spiffe://`, which the old metadata lacked)."""
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if not isinstance(value, dict):
        return value
    state = _get(value, "filter_state")
    if isinstance(state, dict) and state.get("key") == PEER_PRINCIPAL:
        return {"authenticated": {"principal_name": _portable(_get(state, "string_match"))}}
    metadata = _get(value, "metadata")
    if isinstance(metadata, dict) and metadata.get("filter") == OLD_AUTHN:
        path = [segment.get("key") for segment in metadata.get("path", [])]
        matcher = _get(_get(metadata, "value") or {}, "string_match")
        if path == ["source.principal"] and matcher is not None:
            return {"authenticated": {"principal_name": _spiffe(_portable(matcher))}}
    out: Json = {}
    for key, item in value.items():
        if key in ("googleRe2", "google_re2"):
            continue
        if key in _OLD_HEADER_FORMS:
            out["string_match"] = {_OLD_HEADER_FORMS[key]: item}
        elif key in ("safeRegexMatch", "safe_regex_match"):
            out["string_match"] = {"safe_regex": _portable(item)}
        else:
            out[key] = _portable(item)
    return out


def unportable(body: Any) -> bool:
    """Old Istio's `istio_authn/request.auth.principal` (`<iss>/<sub>` as one string) has no
    counterpart in Envoy's jwt_authn metadata: such conditions are left out of the comparison."""
    return OLD_AUTHN in str(body)


def is_request_principal(body: Any) -> bool:
    """mizzen's form of a requestPrincipals condition (the token's iss and sub)."""
    text = str(body)
    return "'iss'" in text and "'sub'" in text and "jwt_authn" in text


def _policy_key(name: str) -> str:
    """`istio-ext-authz-ns[foo]-...` and mizzen's CUSTOM names: compared from `ns[`."""
    start = name.find("ns[")
    return name[start:] if start >= 0 else name


def engines(filters: Iterable[Json]) -> list[Engine]:
    out = []
    for found in filters:
        config = _get(found, "typed_config") or {}
        if not str(config.get("@type", "")).endswith("rbac.v3.RBAC"):
            continue  # ext_authz, jwt_authn: not decisions of the policies' rules
        for slot in ("rules", "shadow_rules"):
            rules = _get(config, slot)
            if rules is None:
                continue
            policies = _get(rules, "policies") or {}
            custom = any(name.startswith("istio-ext-authz") for name in policies)
            action = rules.get("action", "ALLOW")
            if custom:
                key = "CUSTOM"
            elif slot == "shadow_rules":
                key = f"dry-run {action}"
            else:
                key = action
            out.append(Engine(key, {_policy_key(n): _portable(p) for n, p in policies.items()}))
    return out


def _children(items: list[Json], combinator: str) -> list[list[Json]]:
    """Per OR'd item, the children of its AND (the item itself when it is not an AND)."""
    out = []
    for item in items:
        inner = _get(item, combinator)
        key = "rules" if combinator == "and_rules" else "ids"
        out.append(list(inner[key]) if inner is not None else [item])
    return out


ANY_PERMISSION: Json = {"any": True}
ANY_PRINCIPAL: Json = {"any": True}


@dataclass
class Probe:
    side: str  # istio | mizzen
    engine: str
    policy: str
    group: str  # "whole", or "permissions[i]" / "principals[i]" for a condition
    body: Json  # the RBAC policy the probe evaluates
    prefix: str = ""
    results: list[bool] = field(default_factory=list)


def _values(child: Json, principal: bool) -> list[Json]:
    """The single values of one condition: the members of its OR (under its NOT, if any)."""
    negate, either = ("not_id", "or_ids") if principal else ("not_rule", "or_rules")
    inner = _get(child, negate)
    if isinstance(inner, dict):
        child = inner
    members = _get(child, either)
    return list(members["ids" if principal else "rules"]) if isinstance(members, dict) else [child]


def probes(side: str, found: list[Engine]) -> list[Probe]:
    """Per policy: the whole; each condition (`<side>[i]`); each value of each condition
    (`<side>[i]:values`)."""
    out = []
    for engine in found:
        for name, policy in engine.policies.items():
            out.append(Probe(side, engine.key, name, "whole", policy))
            for kind, combinator in (("permissions", "and_rules"), ("principals", "and_ids")):
                principal = kind == "principals"
                for i, children in enumerate(_children(_get(policy, kind) or [], combinator)):
                    for child in children:
                        for group, probed in [(f"{kind}[{i}]", child)] + [
                            (f"{kind}[{i}]:values", v) for v in _values(child, principal)
                        ]:
                            body = {"permissions": [probed], "principals": [ANY_PRINCIPAL]}
                            if principal:
                                body = {"permissions": [ANY_PERMISSION], "principals": [probed]}
                            out.append(Probe(side, engine.key, name, group, body))
    for index, probe in enumerate(out):
        probe.prefix = f"{side[0]}{index}_"
    return out


def _probe_filter(probe: Probe, tcp: bool) -> Json:
    shadow = {"action": "ALLOW", "policies": {"p": probe.body}}
    if tcp:
        config = {
            "@type": _T + "envoy.extensions.filters.network.rbac.v3.RBAC",
            "stat_prefix": probe.prefix,
            "shadow_rules": shadow,
        }
        return {"name": "envoy.filters.network.rbac", "typed_config": config}
    config = {
        "@type": _T + "envoy.extensions.filters.http.rbac.v3.RBAC",
        "shadow_rules": shadow,
        "shadow_rules_stat_prefix": probe.prefix,
    }
    return {"name": "envoy.filters.http.rbac", "typed_config": config}


@dataclass
class ProbeFilters:
    """The probes as a listener's filters (the harness's Filters protocol)."""

    http: list[Json]
    network: list[Json]

    def http_filters(self) -> list[Json]:
        return self.http

    def network_filters(self) -> list[Json]:
        return self.network

    def hcm_options(self) -> Json:
        return {}


# -- requests -------------------------------------------------------------------------------


def _fill(value: str, filler: str = "x") -> str:
    """A concrete value a pattern matches: `*` and `{*}`/`{**}` filled in."""
    value = value.replace("{**}", "a/b").replace("{*}", "seg")
    if value == "*":
        return "any" + filler
    if value.startswith("*"):
        return filler + value[1:]
    if value.endswith("*"):
        return value[:-1] + filler
    return value


def _path(value: str) -> str:
    filled = _fill(value, "/x" if value.startswith("*") else "x")
    return filled if filled.startswith("/") else "/" + filled


@dataclass
class Pools:
    principals: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=lambda: {"/"})
    methods: set[str] = field(default_factory=lambda: {"GET"})
    hosts: set[str] = field(default_factory=lambda: {"httpbin.foo.svc.cluster.local"})
    headers: dict[str, set[str]] = field(default_factory=dict)
    issuers: set[tuple[str, str]] = field(default_factory=set)
    claims: dict[str, set[str]] = field(default_factory=dict)  # dotted claim path -> values
    snis: set[str] = field(default_factory=set)


def _both(holder: Json, name: str) -> list[str]:
    not_name = "not" + name[0].upper() + name[1:]
    return [str(v) for v in (holder.get(name) or []) + (holder.get(not_name) or [])]


def _identity(domain: str, namespace: str = "foo", account: str = "default") -> str:
    return f"{domain}/ns/{namespace}/sa/{account}"


def pools(docs: list[Json], bundle: tuple[str, ...]) -> Pools:
    found = Pools()
    domains = {"cluster.local", *bundle}
    principals: list[str] = []
    for doc in docs:
        for rule in (doc.get("spec") or {}).get("rules") or []:
            for source in (f.get("source") or {} for f in rule.get("from") or []):
                principals += _both(source, "principals")
                for ns in _both(source, "namespaces"):
                    found.principals |= {_identity(d, _fill(ns)) for d in domains}
                for account in _both(source, "serviceAccounts"):
                    ns, _, name = account.rpartition("/")
                    found.principals |= {_identity(d, ns or "foo", name) for d in domains}
                for domain in _both(source, "trustDomains"):
                    found.principals.add(_identity(_fill(domain)))
                for value in _both(source, "requestPrincipals"):
                    _issuer(found, value)
            for operation in (t.get("operation") or {} for t in rule.get("to") or []):
                found.paths |= {_path(v) for v in _both(operation, "paths")}
                found.methods |= {_fill(v) for v in _both(operation, "methods")}
                found.hosts |= {_fill(v) for v in _both(operation, "hosts")}
            for condition in rule.get("when") or []:
                _condition(found, str(condition.get("key")), _both(condition, "values"), principals,
                           domains)  # fmt: skip
    for principal in principals:
        filled = _fill(principal)
        found.principals.add(filled)
        parts = filled.split("/")
        if len(parts) == 5:  # a SPIFFE path: the same identity under every trust domain
            found.principals |= {"/".join([d, *parts[1:]]) for d in domains}
    found.principals |= {_identity(d) for d in domains} | {_identity("other-td", "bar", "x")}
    return found


def _condition(
    found: Pools, key: str, values: list[str], principals: list[str], domains: set[str]
) -> None:
    name = key.partition("[")[2].removesuffix("]")
    if key.startswith(("request.headers[", "request.experimental.inline.headers[")):
        filled = {_fill(v) for v in values}
        joined = {f"other,{v}" for v in filled} | {f"{v}, other" for v in filled}
        joined |= {f"other, {v}" for v in filled}  # blanks around the comma
        found.headers.setdefault(name, set()).update(filled | joined)
    elif key == "source.principal":
        principals += values
    elif key == "source.namespace":
        found.principals |= {_identity(d, _fill(v)) for v in values for d in domains}
    elif key == "source.trustDomain":
        found.principals |= {_identity(_fill(v)) for v in values}
    elif key == "request.auth.principal":
        for value in values:
            _issuer(found, value)
    elif key in ("request.auth.audiences", "request.auth.presenter"):
        claim = "aud" if key.endswith("audiences") else "azp"
        found.claims.setdefault(claim, set()).update(_fill(v) for v in values)
    elif key.startswith("request.auth.claims["):
        path = ".".join(name.split("]["))
        found.claims.setdefault(path, set()).update(_fill(v) for v in values)
    elif key == "connection.sni":
        found.snis |= {_fill(v) for v in values}


def _issuer(found: Pools, value: str) -> None:
    """`<iss>/<sub>`; a value without `/` is an issuer with an empty subject (Istio's reading)
    or, with a subject, a token it must not match."""
    iss, slash, sub = _fill(value).rpartition("/")
    if slash:
        found.issuers.add((iss, sub))
    else:
        found.issuers |= {(sub, ""), (sub, "subject")}


def _nested(claims: Json, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        claims = claims.setdefault(part, {})
    claims[last] = value


def requests(found: Pools, count: int, rng: random.Random, key: jwt.SigningKey) -> list[Request]:
    out = [Request()]  # plaintext, defaults
    identities = sorted(found.principals)
    for _ in range(count - 1):
        headers: list[tuple[str, str]] = []
        for name, values in sorted(found.headers.items()):
            if rng.random() < 0.7:
                headers.append((name, rng.choice(sorted(values))))
        if (found.issuers or found.claims) and rng.random() < 0.8:
            iss, sub = rng.choice(sorted(found.issuers or {("issuer", "subject")}))
            claims = jwt.claims(iss, sub)
            for path, values in sorted(found.claims.items()):
                if rng.random() < 0.7:
                    _nested(claims, path, rng.choice(sorted(values)))
            headers.append(("authorization", "Bearer " + key.token(claims)))
        principal = rng.choice([None, *identities]) if identities else None
        out.append(
            Request(
                path=rng.choice(sorted(found.paths)),
                method=rng.choice(sorted(found.methods)),
                host=rng.choice(sorted(found.hosts)),
                headers=tuple(headers),
                principal=principal,
                source_ip=rng.choice(["127.0.0.1", "127.0.0.2"]),
                sni=rng.choice(sorted(found.snis)) if found.snis and principal else None,
            )
        )
    return out


# -- running --------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    requests: int = 0
    decisions: int = 0  # (policy, request) pairs compared
    matches: int = 0  # of which Istio's policy matched (the check is void if it never does)
    unportable: int = 0  # old goldens' istio_authn request principals, left out
    conditions: int = 0  # conditions (AND children) compared
    varying: int = 0  # of which the requests both met and missed (the informative ones)
    differing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)  # differences with a known cause


def _load_yaml(path: Path) -> list[Json]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _mizzen_filters(case: Case, docs: list[Json]) -> list[Json]:
    mesh_data: Json = {}
    if case.bundle:
        mesh_data["trustDomain"] = case.bundle[0]
        mesh_data["trustDomainAliases"] = list(case.bundle[1:])
    if case.provider is not None:
        mesh_data["extensionProviders"] = [case.provider]
    policy = inbound_policy(
        docs,
        mesh=MeshConfig.from_mapping(mesh_data),
        known_hosts=frozenset({EXT_AUTHZ_HOST}),
        labels={"app": "httpbin", "version": "v1"},
    )
    return policy.network_filters() if case.tcp else policy.http_filters()


def _pairs(istio: list[Engine], mizzen: list[Engine], notes: list[str]) -> Iterator[str]:
    keys_i = Counter(e.key for e in istio)
    keys_m = Counter(e.key for e in mizzen)
    if keys_i != keys_m:
        notes.append(f"engines differ: istio {dict(keys_i)} mizzen {dict(keys_m)}")
    for key in sorted(set(keys_i) | set(keys_m)):
        names_i = {n for e in istio if e.key == key for n in e.policies}
        names_m = {n for e in mizzen if e.key == key for n in e.policies}
        if names_i != names_m:
            notes.append(
                f"{key}: policies only in istio {sorted(names_i - names_m)}, "
                f"only in mizzen {sorted(names_m - names_i)}"
            )
        yield key


_REGEX_CHARS = set("[](){}.+?^$|\\")


def _literal_values(docs: list[Json]) -> list[str]:
    """Namespace and principal values with regex metacharacters (their `*` aside): Istio writes
    a namespace (`.*/ns/<value>/.*`) and a `*suffix` principal (`spiffe://.*<suffix>`) into a
    regex unescaped, mizzen matches them literally (the issue asks for it: `ns/a.b` must not
    match `ns/aXb`). No Kubernetes namespace name holds one; in principals it is `.`."""
    found = []
    for doc in docs:
        for rule in (doc.get("spec") or {}).get("rules") or []:
            for source in (f.get("source") or {} for f in rule.get("from") or []):
                found += _both(source, "namespaces") + _both(source, "principals")
            for condition in rule.get("when") or []:
                if condition.get("key") in ("source.namespace", "source.principal"):
                    found += _both(condition, "values")
    return [v.replace("*", "") for v in found if _REGEX_CHARS & set(v.replace("*", ""))]


def _explain(outcome: Outcome, docs: list[Json]) -> None:
    literal = _literal_values(docs)
    kept = []
    for note in outcome.notes:
        if any(value in note.replace("\\", "") for value in literal):  # mizzen's escaped
            outcome.explained.append(note)
        else:
            kept.append(note)
    outcome.notes = kept


def run_case(case: Case, testdata: Path, count: int, seed: int, workdir: Path) -> Outcome:
    outcome = Outcome(case.name)
    base = testdata / ("tcp" if case.tcp else "http")
    docs = _load_yaml(base / case.input)
    istio_filters = [d for name in case.want for d in _load_yaml(base / name)]
    istio = engines(istio_filters)
    mizzen = engines(_mizzen_filters(case, docs))
    keys = list(_pairs(istio, mizzen, outcome.notes))
    all_probes = probes("istio", istio) + probes("mizzen", mizzen)
    key = jwt.SigningKey("k1")
    filters = [_probe_filter(p, case.tcp) for p in all_probes]
    listener = (
        ProbeFilters([], filters) if case.tcp else ProbeFilters([jwt_filter(key), *filters], [])
    )
    sent = requests(pools(docs, case.bundle), count, random.Random(seed), key)
    ca = MeshCA(workdir)
    slot = Slot("case", listener, tcp=case.tcp)
    with run_policy_envoy([slot], ca, workdir) as envoy:
        before = _matched(envoy, all_probes, case.tcp)
        for request in sent:
            send(envoy, "case", request)
            after = _matched(envoy, all_probes, case.tcp)
            for probe in all_probes:
                probe.results.append(after[probe.prefix] > before[probe.prefix])
            before = after
    outcome.requests = len(sent)
    _compare(outcome, all_probes, keys, sent)
    _explain(outcome, docs)
    return outcome


def _matched(envoy: PolicyEnvoy, all_probes: list[Probe], tcp: bool) -> dict[str, int]:
    """Per probe prefix, its shadow_allowed counter (`http.case.rbac.<prefix>.shadow_allowed`
    on HTTP, `<prefix>.rbac.shadow_allowed` on TCP: Envoy puts the dots)."""
    counters: dict[str, int] = {}
    for name, value in envoy.stats("shadow_allowed").items():
        if not name.endswith("shadow_allowed"):
            continue
        if tcp:
            token = name.removesuffix("rbac.shadow_allowed")
        else:
            token = name.removeprefix("http.case.rbac.").removesuffix("shadow_allowed")
        counters[token.strip("._")] = value
    return {p.prefix: counters.get(p.prefix.strip("_"), 0) for p in all_probes}


def _describe(request: Request) -> str:
    parts = [f"{request.method} {request.path} host={request.host}"]
    if request.principal:
        parts.append(f"peer={request.principal}")
    parts += [f"{k}={v[:40]}" for k, v in request.headers if k != "authorization"]
    if any(k == "authorization" for k, _ in request.headers):
        parts.append("jwt")
    if request.sni:
        parts.append(f"sni={request.sni}")
    return " ".join(parts)


def _compare(
    outcome: Outcome, all_probes: list[Probe], keys: list[str], sent: list[Request]
) -> None:
    by: dict[tuple[str, str, str, str], list[Probe]] = {}
    for probe in all_probes:
        by.setdefault((probe.side, probe.engine, probe.policy, probe.group), []).append(probe)
    for key in keys:
        names = sorted({p.policy for p in all_probes if p.engine == key})
        for name in names:
            whole_i = by.get(("istio", key, name, "whole"))
            whole_m = by.get(("mizzen", key, name, "whole"))
            if not whole_i or not whole_m:
                continue  # reported as a structural difference
            _compare_conditions(outcome, by, key, name, sent)
            if unportable(whole_i[0].body):
                outcome.unportable += 1
                continue
            for index, (a, b) in enumerate(
                zip(whole_i[0].results, whole_m[0].results, strict=True)
            ):
                outcome.decisions += 1
                outcome.matches += a
                if a != b:
                    outcome.differing.append(
                        f"{key} {name}: istio {'match' if a else 'no match'}, mizzen "
                        f"{'match' if b else 'no match'} for {_describe(sent[index])}"
                    )


def _compare_conditions(
    outcome: Outcome,
    by: dict[tuple[str, str, str, str], list[Probe]],
    key: str,
    name: str,
    sent: list[Request],
) -> None:
    groups = sorted({g for (_, k, n, g) in by if k == key and n == name and g != "whole"})
    for group in groups:
        istio = by.get(("istio", key, name, group), [])
        mizzen = by.get(("mizzen", key, name, group), [])
        skipped = [p for p in istio if unportable(p.body)]
        if skipped:  # leave the same number of mizzen's requestPrincipals conditions out
            istio = [p for p in istio if not unportable(p.body)]
            counterparts = [p for p in mizzen if is_request_principal(p.body)][: len(skipped)]
            mizzen = [p for p in mizzen if p not in counterparts]
            outcome.unportable += len(skipped)
        vectors_i = Counter(tuple(p.results) for p in istio)
        vectors_m = Counter(tuple(p.results) for p in mizzen)
        if group.endswith(":values"):
            # Values are OR'd: the set of their results decides (one side may OR several
            # matchers where the other has one matcher of several values).
            vectors_i = Counter(set(vectors_i))
            vectors_m = Counter(set(vectors_m))
        else:
            outcome.conditions += len(istio)
            outcome.varying += sum(1 for p in istio if len(set(p.results)) == 2)
        if vectors_i != vectors_m:
            diff = _vector_diff(istio, mizzen, group)
            outcome.notes.append(
                f"{key} {name} {group}: differ (istio {len(istio)}, mizzen {len(mizzen)}; {diff})"
            )


def _vector_diff(istio: list[Probe], mizzen: list[Probe], group: str) -> str:
    only_i = Counter(tuple(p.results) for p in istio)
    only_m = Counter(tuple(p.results) for p in mizzen)
    if group.endswith(":values"):  # compared as sets
        only_i, only_m = Counter(set(only_i)), Counter(set(only_m))
    only_i, only_m = only_i - only_m, only_m - only_i
    lines = []
    for side, probes_of, only in (("istio", istio, only_i), ("mizzen", mizzen, only_m)):
        for probe in probes_of:
            vector = tuple(probe.results)
            if only[vector] > 0:
                only[vector] -= 1
                body = probe.body["permissions" if group.startswith("perm") else "principals"][0]
                if set(vector) == {False} and group.endswith(":values"):
                    continue  # an all-miss value is reported through the others
                lines.append(f"only {side}: {str(body)[:200]} matched {sum(vector)} requests")
    return "; ".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("testdata", type=Path, help="Istio's authz builder testdata directory")
    parser.add_argument("--case", action="append", default=[], help="only these cases")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    selected = [c for c in CASES if not args.case or c.name in args.case]
    total_decisions = total_differing = 0
    failed = False
    for case in selected:
        base = args.testdata / ("tcp" if case.tcp else "http")
        missing = [n for n in (case.input, *case.want) if not (base / n).exists()]
        if missing:
            print(f"{case.name:42} skipped (missing {', '.join(missing)})")
            continue
        with tempfile.TemporaryDirectory(prefix=f"authz-diff-{case.name}-") as tmp:
            outcome = run_case(case, args.testdata, args.requests, args.seed, Path(tmp))
        total_decisions += outcome.decisions
        total_differing += len(outcome.differing)
        status = "agree" if not outcome.differing and not outcome.notes else "DIFFER"
        if status == "agree" and outcome.explained:
            status = "known"
        failed |= status == "DIFFER"
        print(
            f"{case.name:42} {status:6} {outcome.requests} requests, {outcome.decisions} "
            f"decisions ({outcome.matches} matches), {len(outcome.differing)} differ; "
            f"{outcome.conditions} conditions ({outcome.varying} met by some requests only)"
            + (f", {outcome.unportable} left out (istio_authn)" if outcome.unportable else "")
        )
        for line in outcome.notes + outcome.differing[: None if args.verbose else 5]:
            print(f"    {line}")
        if outcome.explained:
            print(
                f"    known ({len(outcome.explained)}): namespace or principal values with "
                "regex metacharacters (Istio: an unescaped regex; mizzen: literal)"
            )
            if args.verbose:
                for line in outcome.explained:
                    print(f"      {line}")
    print(f"total: {total_decisions} decisions compared, {total_differing} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
