"""A reference evaluator of Istio's documented AuthorizationPolicy semantics, written from the
documentation (istio.io "Authorization Policy" reference and concepts), independent of the
translation: (policies, request attributes) -> allowed or denied. Used to check what a real
Envoy decides through mizzen's translation.

- DENY before ALLOW; any matching DENY policy denies. With one or more ALLOW policies a request
  is allowed only when one matches; with none, it is allowed. AUDIT and dry-run policies never
  change the decision. A policy with no rules matches nothing.
- A rule matches when every present part does: `from` (any source), `to` (any operation),
  `when` (every condition). In a source, operation or condition every set field must match:
  `values` (any of them) and `notValues` (none of them).
- Values: exact, `prefix*`, `*suffix`, `*` (present, non-empty). Principals are SPIFFE ids
  without `spiffe://`; namespaces and service accounts are read from them. Hosts compare
  without case.
- Trust domains (istio.io "Trust Domain Migration"): a principal `<td>/ns/<ns>/sa/<sa>` whose
  trust domain is the mesh's, one of its `trustDomainAliases`, or `cluster.local` (which stands
  for the local trust domain) names that account under every trust domain of the mesh; other
  forms (`*` in the trust domain, fewer or more segments) are matched as written. A
  `trustDomains` value naming a trust domain of the mesh stands for all of them.
- Paths with templates: `{*}` is one non-empty segment, `{**}` any number of segments (last).
- TCP: HTTP-only attributes cannot be known. An ALLOW rule using one never matches; in a DENY
  rule such a condition is ignored (the rest must still match)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from control.api.models.security import AuthorizationPolicy, Condition, Operation, Rule, Source

LOCAL_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class Attributes:
    tcp: bool = False
    principal: str | None = None  # "cluster.local/ns/foo/sa/bar"; None: no client certificate
    source_ip: str = "127.0.0.1"
    remote_ip: str | None = None  # defaults to source_ip
    destination_port: int = 0
    destination_ip: str = "127.0.0.1"
    sni: str | None = None
    method: str = "GET"
    host: str = ""
    path: str = "/"  # after normalisation, without the query
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    claims: Mapping[str, Any] | None = None  # a verified JWT's payload
    trust_domains: tuple[str, ...] = (LOCAL_DOMAIN,)  # the mesh's, then its aliases


def value_matches(pattern: str, value: str | None, ignore_case: bool = False) -> bool:
    if value is None:
        return False
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def principal_matches(pattern: str, attrs: Attributes) -> bool:
    parts = pattern.split("/")
    if attrs.principal is None or len(parts) != 5 or parts[0] == "*":
        return value_matches(pattern, attrs.principal)
    if parts[0] != LOCAL_DOMAIN and parts[0] not in attrs.trust_domains:
        return value_matches(pattern, attrs.principal)
    domain, _, rest = attrs.principal.partition("/")
    return domain in attrs.trust_domains and value_matches("/".join(parts[1:]), rest)


def trust_domain_matches(pattern: str, attrs: Attributes) -> bool:
    if attrs.principal is None:
        return False
    domain = attrs.principal.partition("/")[0]
    if pattern in attrs.trust_domains:
        return domain in attrs.trust_domains
    return value_matches(pattern, domain)


def path_matches(pattern: str, path: str) -> bool:
    if "{*}" not in pattern and "{**}" not in pattern:
        return value_matches(pattern, path)
    parts = []
    for segment in pattern.split("/"):
        if segment == "{*}":
            parts.append("[^/]+")
        elif segment == "{**}":
            parts.append(".*")
        else:
            parts.append(re.escape(segment))
    return re.fullmatch("/".join(parts), path) is not None


def _field(values: Sequence[str], not_values: Sequence[str], test: Any) -> bool:
    if values and not any(test(v) for v in values):
        return False
    return not (not_values and any(test(v) for v in not_values))


def _segments(principal: str | None) -> dict[str, str]:
    """`td/ns/<ns>/sa/<sa>` -> {"ns": ..., "sa": ...}."""
    if principal is None:
        return {}
    parts = principal.split("/")[1:]
    return {parts[i]: parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def _in_block(block: str, address: str | None) -> bool:
    if address is None:
        return False
    return ipaddress.ip_address(address) in ipaddress.ip_network(block, strict=False)


def _claim(claims: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    value: Any = claims
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _claim_matches(pattern: str, claim: Any) -> bool:
    if isinstance(claim, list):
        return any(isinstance(c, str) and value_matches(pattern, c) for c in claim)
    return isinstance(claim, str) and value_matches(pattern, claim)


def _request_principal(attrs: Attributes) -> str | None:
    if attrs.claims is None:
        return None
    return f"{attrs.claims.get('iss', '')}/{attrs.claims.get('sub', '')}"


class _UnknownError(Exception):
    """An HTTP-only attribute asked on TCP."""


def _namespace(pattern: str, attrs: Attributes) -> bool:
    return value_matches(pattern, _segments(attrs.principal).get("ns"))


def _account(value: str, attrs: Attributes, policy_ns: str) -> bool:
    namespace, slash, name = value.partition("/")
    if not slash:
        namespace, name = policy_ns, value
    found = _segments(attrs.principal)
    return found.get("ns") == namespace and found.get("sa") == name


def _unknown(
    values: Sequence[str], not_values: Sequence[str], attrs: Attributes, allow: bool
) -> bool:
    """An HTTP-only field on TCP: ALLOW cannot use the rule; DENY ignores the field (True)."""
    if attrs.tcp and (values or not_values):
        if allow:
            raise _UnknownError
        return True
    return False


def _source(source: Source, attrs: Attributes, policy_ns: str, allow: bool) -> bool:
    remote = attrs.remote_ip or attrs.source_ip
    return all((
        _field(source.principals, source.not_principals, lambda p: principal_matches(p, attrs)),
        _field(source.trust_domains, source.not_trust_domains,
               lambda d: trust_domain_matches(d, attrs)),
        _unknown(source.request_principals, source.not_request_principals, attrs, allow)
        or _field(source.request_principals, source.not_request_principals,
                  lambda p: value_matches(p, _request_principal(attrs))),
        _field(source.namespaces, source.not_namespaces, lambda p: _namespace(p, attrs)),
        _field(source.service_accounts, source.not_service_accounts,
               lambda p: _account(p, attrs, policy_ns)),
        _field(source.ip_blocks, source.not_ip_blocks, lambda b: _in_block(b, attrs.source_ip)),
        _field(source.remote_ip_blocks, source.not_remote_ip_blocks,
               lambda b: _in_block(b, remote)),
    ))  # fmt: skip


def _operation(op: Operation, attrs: Attributes, allow: bool) -> bool:
    return all((
        _unknown(op.hosts, op.not_hosts, attrs, allow)
        or _field(op.hosts, op.not_hosts, lambda h: value_matches(h, attrs.host, ignore_case=True)),
        _unknown(op.methods, op.not_methods, attrs, allow)
        or _field(op.methods, op.not_methods, lambda m: value_matches(m, attrs.method)),
        _unknown(op.paths, op.not_paths, attrs, allow)
        or _field(op.paths, op.not_paths, lambda p: path_matches(p, attrs.path)),
        _field(op.ports, op.not_ports, lambda p: int(p) == attrs.destination_port),
    ))  # fmt: skip


def _condition(cond: Condition, attrs: Attributes, policy_ns: str, allow: bool) -> bool:
    key = cond.key or ""
    if key.startswith("request.") and _unknown(cond.values, cond.not_values, attrs, allow):
        return True
    test: Any
    if key == "source.ip":
        test = lambda v: _in_block(v, attrs.source_ip)  # noqa: E731
    elif key == "remote.ip":
        test = lambda v: _in_block(v, attrs.remote_ip or attrs.source_ip)  # noqa: E731
    elif key == "source.principal":
        test = lambda v: principal_matches(v, attrs)  # noqa: E731
    elif key == "source.trustDomain":
        test = lambda v: trust_domain_matches(v, attrs)  # noqa: E731
    elif key == "source.namespace":
        test = lambda v: _namespace(v, attrs)  # noqa: E731
    elif key == "source.serviceAccount":
        test = lambda v: _account(v, attrs, policy_ns)  # noqa: E731
    elif key == "destination.port":
        test = lambda v: int(v) == attrs.destination_port  # noqa: E731
    elif key == "destination.ip":
        test = lambda v: _in_block(v, attrs.destination_ip)  # noqa: E731
    elif key == "connection.sni":
        test = lambda v: value_matches(v, attrs.sni)  # noqa: E731
    elif key.startswith("request.headers["):
        name = key[len("request.headers[") : -1].lower()
        test = lambda v: value_matches(v, attrs.headers.get(name))  # noqa: E731
    elif key.startswith("request.experimental.inline.headers["):
        name = key[len("request.experimental.inline.headers[") : -1].lower()
        items = attrs.headers.get(name, "").split(",")  # Istio: no trimming
        present = name in attrs.headers
        test = lambda v: present and any(value_matches(v, x) for x in items)  # noqa: E731
    elif key == "request.auth.principal":
        test = lambda v: value_matches(v, _request_principal(attrs))  # noqa: E731
    elif key == "request.auth.audiences":
        test = lambda v: _claim_matches(v, _claim(attrs.claims, ["aud"]))  # noqa: E731
    elif key == "request.auth.presenter":
        test = lambda v: _claim_matches(v, _claim(attrs.claims, ["azp"]))  # noqa: E731
    elif key.startswith("request.auth.claims["):
        path = key[len("request.auth.claims[") : -1].split("][")
        test = lambda v: _claim_matches(v, _claim(attrs.claims, path))  # noqa: E731
    else:
        raise ValueError(f"reference evaluator: unsupported key {key}")
    return _field(cond.values, cond.not_values, test)


def rule_matches(rule: Rule, attrs: Attributes, policy_ns: str, allow: bool) -> bool:
    """ALLOW on TCP: a rule that uses an HTTP-only attribute anywhere never matches (Istio
    skips the whole rule), even in a `from`/`to` entry that another entry would satisfy."""
    sources = [f.source for f in rule.from_ if f.source is not None]
    operations = [t.operation for t in rule.to if t.operation is not None]
    try:
        source_hits = [_source(s, attrs, policy_ns, allow) for s in sources]
        operation_hits = [_operation(o, attrs, allow) for o in operations]
        condition_hits = [_condition(c, attrs, policy_ns, allow) for c in rule.when]
    except _UnknownError:
        return False
    if sources and not any(source_hits):
        return False
    if operations and not any(operation_hits):
        return False
    return all(condition_hits)


@dataclass(frozen=True)
class Policy:
    namespace: str
    spec: AuthorizationPolicy
    dry_run: bool = False


def _matches(policy: Policy, attrs: Attributes) -> bool:
    allow = (policy.spec.action or "ALLOW") == "ALLOW"
    return any(rule_matches(r, attrs, policy.namespace, allow) for r in policy.spec.rules)


def decide(
    policies: Sequence[Policy], attrs: Attributes, trust_domains: tuple[str, ...] | None = None
) -> bool:
    """True: allowed. CUSTOM policies are out of this evaluator's scope."""
    if trust_domains is not None:
        attrs = replace(attrs, trust_domains=trust_domains)
    enforced = [p for p in policies if not p.dry_run]
    if any(_matches(p, attrs) for p in enforced if p.spec.action == "DENY"):
        return False
    allows = [p for p in enforced if (p.spec.action or "ALLOW") == "ALLOW"]
    return not allows or any(_matches(p, attrs) for p in allows)
