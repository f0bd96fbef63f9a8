"""One AuthorizationPolicy rule -> one Envoy RBAC policy, with Istio's semantics
(pilot/pkg/security/authz/model): `from` entries become OR'd principals and `to` entries OR'd
permissions, each an AND of its fields; `when` conditions join every principal (source and
request attributes) or every permission (destination and connection attributes). A field's
`values` are OR'd; its `notValues` are OR'd under a NOT.

On a TCP filter chain an HTTP-only attribute cannot be checked. As Istio does
(`rule.checkError`): in an ALLOW policy the whole rule is skipped (`HttpOnlyError` is raised: it can
never grant); in a DENY or AUDIT (or CUSTOM) policy only that attribute is dropped and the rest
of the rule kept, so the rule matches more (fails closed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from control.api.models.security import Condition, Rule
from control.plane.xds.translate.authz import matchers as m
from control.plane.xds.translate.authz.matchers import Json
from control.plane.xds.translate.authz.trustdomain import principal_aliases, trust_domain_aliases


class HttpOnlyError(Exception):
    """An HTTP-only attribute on a TCP chain, in an ALLOW policy: the rule is skipped."""


@dataclass(frozen=True, slots=True)
class Context:
    policy_namespace: str
    trust_domains: tuple[str, ...] = ()  # the mesh's trust domain first, then its aliases


Generator = Callable[[str, str, Context], Json]  # (key, value, context) -> principal/permission


def _authenticated(matcher: Json) -> Json:
    return {"authenticated": {"principal_name": matcher}}


def _principal(key: str, value: str, ctx: Context) -> Json:
    return _authenticated(m.string(value, prefix=m.SPIFFE))


def _namespace(key: str, value: str, ctx: Context) -> Json:
    return _authenticated(m.namespace_regex(value))


def _trust_domain(key: str, value: str, ctx: Context) -> Json:
    return _authenticated(m.trust_domain(value))


def _service_account(key: str, value: str, ctx: Context) -> Json:
    return _authenticated(m.service_account_regex(value, ctx.policy_namespace))


def _source_ip(key: str, value: str, ctx: Context) -> Json:
    return {"direct_remote_ip": m.cidr(value)}


def _remote_ip(key: str, value: str, ctx: Context) -> Json:
    return {"remote_ip": m.cidr(value)}


def _request_header(key: str, value: str, ctx: Context) -> Json:
    return {"header": m.header(_brackets(key)[0], value)}


def _inline_header(key: str, value: str, ctx: Context) -> Json:
    return {"header": m.inline_header(_brackets(key)[0], value)}


def _request_principal(value: str) -> Json:
    """`iss/sub` (the issuer may hold `/`: split at the last one), Istio's wildcard forms."""
    issuer, slash, subject = value.rpartition("/")
    if not slash:
        issuer, subject = value, ""
    any_value = m.regex(m.ANY_REGEX)
    if value == "*":
        iss, sub = any_value, any_value
    elif value.startswith("*"):
        if slash:
            iss = any_value if issuer == "*" else {"suffix": issuer[1:]}
            sub = {"exact": subject}
        else:
            iss, sub = any_value, {"suffix": value[1:]}
    elif value.endswith("*"):
        if slash:
            iss = {"exact": issuer}
            sub = any_value if subject == "*" else {"prefix": subject[:-1]}
        else:
            iss, sub = {"prefix": value[:-1]}, any_value
    else:
        iss, sub = {"exact": issuer}, {"exact": subject}
    return {
        "and_ids": {
            "ids": [
                {"metadata": m.jwt_claim(("iss",), {"string_match": iss})},
                {"metadata": m.jwt_claim(("sub",), {"string_match": sub})},
            ]
        }
    }


def _claims(path: tuple[str, ...]) -> Callable[[tuple[str, ...]], Json]:
    def build(values: tuple[str, ...]) -> Json:
        return {"metadata": m.jwt_claim(path, m.claim_values(values))}

    return build


def _host(key: str, value: str, ctx: Context) -> Json:
    return {"header": m.header(":authority", value, ignore_case=True)}


def _method(key: str, value: str, ctx: Context) -> Json:
    return {"header": m.header(":method", value)}


def _path(key: str, value: str, ctx: Context) -> Json:
    if m.is_path_template(value):
        return {"uri_template": m.uri_template(value)}
    return {"url_path": {"path": m.string(value)}}


def _port(key: str, value: str, ctx: Context) -> Json:
    return {"destination_port": int(value)}


def _destination_ip(key: str, value: str, ctx: Context) -> Json:
    return {"destination_ip": m.cidr(value)}


def _sni(key: str, value: str, ctx: Context) -> Json:
    return {"requested_server_name": m.string(value)}


def _envoy_filter(key: str, value: str, ctx: Context) -> Json:
    """`experimental.envoy.filters.<filter>[<key>]`: a string in that filter's dynamic
    metadata, or (`[v]`) a list holding v (Istio's experimental attribute)."""
    name, _, rest = key.removeprefix("experimental.").partition("[")
    field = rest.removesuffix("]")
    if value.startswith("[") and value.endswith("]"):
        matcher: Json = {"list_match": {"one_of": {"string_match": m.string(value[1:-1])}}}
    else:
        matcher = {"string_match": m.string(value)}
    return {"metadata": {"filter": name, "path": [{"key": field}], "value": matcher}}


def _brackets(key: str) -> tuple[str, ...]:
    """`request.auth.claims[a][b]` -> ("a", "b")."""
    _, _, rest = key.partition("[")
    return tuple(part for part in rest.removesuffix("]").split("][") if part)


HTTP_ONLY_KEYS: Final = frozenset(
    {"hosts", "methods", "paths", "request.auth.principal", "request.auth.audiences",
     "request.auth.presenter"}
)  # fmt: skip


def is_http_only(key: str) -> bool:
    return key in HTTP_ONLY_KEYS or key.startswith(
        ("request.headers[", "request.experimental.inline.headers[", "request.auth.claims[")
    )


Expander = Callable[[Sequence[str], Sequence[str]], list[str]]
# Istio's trust-domain migration (see `trustdomain`) applies to these attributes' values.
_ALIASED: Final[dict[str, Expander]] = {
    "source.principal": principal_aliases,
    "source.trustDomain": trust_domain_aliases,
}


def _or(items: list[Json], principal: bool) -> Json:
    if principal:
        return items[0] if len(items) == 1 else {"or_ids": {"ids": items}}
    return items[0] if len(items) == 1 else {"or_rules": {"rules": items}}


def _not(item: Json, principal: bool) -> Json:
    return {"not_id": item} if principal else {"not_rule": item}


Tagged = tuple[bool, Json]  # (HTTP only, matcher)


def _matchers(
    key: str,
    values: Sequence[str],
    not_values: Sequence[str],
    generate: Generator | None,
    generate_all: Callable[[tuple[str, ...]], Json] | None,
    ctx: Context,
    principal: bool,
    out: list[Tagged],
) -> None:
    """Append the field's matchers (values OR'd; notValues OR'd under a NOT) to `out`."""
    if not values and not not_values:
        return
    expand = _ALIASED.get(key)
    if expand is not None:
        values = expand(values, ctx.trust_domains)
        not_values = expand(not_values, ctx.trust_domains)
    http_only = is_http_only(key)
    for found, negate in ((values, False), (not_values, True)):
        if not found:
            continue
        if generate_all is not None:
            item = generate_all(tuple(found))
        else:
            assert generate is not None
            item = _or([generate(key, v, ctx) for v in found], principal)
        out.append((http_only, _not(item, principal) if negate else item))


_PRINCIPAL_KEYS: Final[dict[str, Generator]] = {
    "source.ip": _source_ip,
    "remote.ip": _remote_ip,
    "source.namespace": _namespace,
    "source.principal": _principal,
    "source.serviceAccount": _service_account,
    "source.trustDomain": _trust_domain,
}
_PERMISSION_KEYS: Final[dict[str, Generator]] = {
    "destination.ip": _destination_ip,
    "destination.port": _port,
    "connection.sni": _sni,
}


def _when(
    condition: Condition, ctx: Context, principals: list[Tagged], permissions: list[Tagged]
) -> None:
    """A `when` condition's matchers, joined to every principal or every permission (keys are
    checked by validation)."""
    key = condition.key or ""
    values, not_values = condition.values, condition.not_values
    if key in _PRINCIPAL_KEYS:
        _matchers(key, values, not_values, _PRINCIPAL_KEYS[key], None, ctx, True, principals)
    elif key in _PERMISSION_KEYS:
        _matchers(key, values, not_values, _PERMISSION_KEYS[key], None, ctx, False, permissions)
    elif key.startswith("experimental.envoy.filters."):
        _matchers(key, values, not_values, _envoy_filter, None, ctx, False, permissions)
    elif key.startswith("request.headers["):
        _matchers(key, values, not_values, _request_header, None, ctx, True, principals)
    elif key.startswith("request.experimental.inline.headers["):
        _matchers(key, values, not_values, _inline_header, None, ctx, True, principals)
    elif key == "request.auth.principal":
        _matchers(key, values, not_values, None, _request_principals, ctx, True, principals)
    elif key == "request.auth.audiences":
        _matchers(key, values, not_values, None, _claims(("aud",)), ctx, True, principals)
    elif key == "request.auth.presenter":
        _matchers(key, values, not_values, None, _claims(("azp",)), ctx, True, principals)
    elif key.startswith("request.auth.claims["):
        _matchers(key, values, not_values, None, _claims(_brackets(key)), ctx, True, principals)
    else:
        raise ValueError(f"unknown attribute {key!r}")  # validation refuses these first


def _request_principals(values: tuple[str, ...]) -> Json:
    return _or([_request_principal(v) for v in values], principal=True)


def _and(items: list[Json], principal: bool) -> Json:
    if principal:
        return {"and_ids": {"ids": items or [{"any": True}]}}
    return {"and_rules": {"rules": items or [{"any": True}]}}


_FieldSpec = tuple[str, str, str, Generator | None, Callable[[tuple[str, ...]], Json] | None]
# (values attribute, notValues attribute, attribute key, one-value generator, all-values one)
_SOURCE_FIELDS: Final[tuple[_FieldSpec, ...]] = (
    ("principals", "not_principals", "source.principal", _principal, None),
    ("trust_domains", "not_trust_domains", "source.trustDomain", _trust_domain, None),
    ("request_principals", "not_request_principals", "request.auth.principal", None,
     _request_principals),
    ("service_accounts", "not_service_accounts", "source.serviceAccount", _service_account, None),
    ("namespaces", "not_namespaces", "source.namespace", _namespace, None),
    ("remote_ip_blocks", "not_remote_ip_blocks", "remote.ip", _remote_ip, None),
    ("ip_blocks", "not_ip_blocks", "source.ip", _source_ip, None),
)  # fmt: skip
_OPERATION_FIELDS: Final[tuple[_FieldSpec, ...]] = (
    ("hosts", "not_hosts", "hosts", _host, None),
    ("methods", "not_methods", "methods", _method, None),
    ("paths", "not_paths", "paths", _path, None),
    ("ports", "not_ports", "destination.port", _port, None),
)


@dataclass(frozen=True, slots=True)
class RulePolicies:
    """One rule's RBAC policy on an HTTP chain and on a TCP chain (ALLOW and DENY semantics),
    computed in one pass; the forms share their matchers, so treat them as immutable."""

    http: Json
    tcp_allow: Json | None  # None: the rule is skipped (an HTTP-only attribute in ALLOW)
    tcp_deny: Json  # HTTP-only conditions dropped (DENY, AUDIT, CUSTOM)

    def policy(self, for_tcp: bool, allow: bool) -> Json | None:
        if not for_tcp:
            return self.http
        return self.tcp_allow if allow else self.tcp_deny


def _assemble(principals: list[list[Tagged]], permissions: list[list[Tagged]], tcp: bool) -> Json:
    return {
        "permissions": [_and([m for h, m in p if not (tcp and h)], False) for p in permissions],
        "principals": [_and([m for h, m in p if not (tcp and h)], True) for p in principals],
    }


def rule_policies(rule: Rule, ctx: Context) -> RulePolicies:
    base_principals: list[Tagged] = []
    base_permissions: list[Tagged] = []
    for condition in rule.when:
        _when(condition, ctx, base_principals, base_permissions)

    principals: list[list[Tagged]] = []
    for rule_from in rule.from_ or (None,):
        items: list[Tagged] = []
        source = rule_from.source if rule_from is not None else None
        if source is not None:
            for name, not_name, key, generate, generate_all in _SOURCE_FIELDS:
                values, not_values = getattr(source, name), getattr(source, not_name)
                if values or not_values:
                    _matchers(key, values, not_values, generate, generate_all, ctx, True, items)
        principals.append(items + base_principals)

    permissions: list[list[Tagged]] = []
    for rule_to in rule.to or (None,):
        items = []
        operation = rule_to.operation if rule_to is not None else None
        if operation is not None:
            for name, not_name, key, generate, generate_all in _OPERATION_FIELDS:
                values, not_values = getattr(operation, name), getattr(operation, not_name)
                if values or not_values:
                    _matchers(key, values, not_values, generate, generate_all, ctx, False, items)
        permissions.append(items + base_permissions)

    http = _assemble(principals, permissions, tcp=False)
    http_only = any(h for group in (*principals, *permissions) for h, _ in group)
    if not http_only:
        return RulePolicies(http, http, http)
    return RulePolicies(http, None, _assemble(principals, permissions, tcp=True))  # fmt: skip


def rule_policy(rule: Rule, ctx: Context, for_tcp: bool = False, allow: bool = True) -> Json:
    """The RBAC policy of one rule; raises HttpOnlyError (ALLOW on TCP) to skip it."""
    found = rule_policies(rule, ctx).policy(for_tcp, allow)
    if found is None:
        raise HttpOnlyError("the rule uses an HTTP-only attribute")
    return found


MATCH_NEVER: Final[Json] = {
    "permissions": [{"not_rule": {"any": True}}],
    "principals": [{"not_id": {"any": True}}],
}
