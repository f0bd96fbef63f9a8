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
    for_tcp: bool
    allow: bool  # ALLOW drops the whole rule for an HTTP-only attribute on TCP
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


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    values: Sequence[str]
    not_values: Sequence[str]
    generate: Generator | None = None  # one value -> one matcher (OR'd)
    generate_all: Callable[[tuple[str, ...]], Json] | None = None  # all values -> one matcher


def _or(items: list[Json], principal: bool) -> Json:
    if principal:
        return items[0] if len(items) == 1 else {"or_ids": {"ids": items}}
    return items[0] if len(items) == 1 else {"or_rules": {"rules": items}}


def _not(item: Json, principal: bool) -> Json:
    return {"not_id": item} if principal else {"not_rule": item}


def _with_aliases(field: _Field, ctx: Context) -> _Field:
    """Istio's trust-domain migration (see `trustdomain`) on principals and trust domains."""
    expand: Callable[[Sequence[str], Sequence[str]], list[str]]
    if field.key == "source.principal":
        expand = principal_aliases
    elif field.key == "source.trustDomain":
        expand = trust_domain_aliases
    else:
        return field
    return _Field(
        field.key, expand(field.values, ctx.trust_domains),
        expand(field.not_values, ctx.trust_domains), field.generate, field.generate_all,
    )  # fmt: skip


def _field_matchers(field: _Field, ctx: Context, principal: bool) -> list[Json]:
    if not field.values and not field.not_values:
        return []
    if ctx.for_tcp and is_http_only(field.key):
        if ctx.allow:
            raise HttpOnlyError(f"{field.key} is HTTP only")
        return []  # DENY/AUDIT: drop this condition, keep the rest of the rule
    out: list[Json] = []
    for values, negate in ((field.values, False), (field.not_values, True)):
        if not values:
            continue
        if field.generate_all is not None:
            item = field.generate_all(tuple(values))
        else:
            assert field.generate is not None
            item = _or([field.generate(field.key, v, ctx) for v in values], principal)
        out.append(_not(item, principal) if negate else item)
    return out


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


def _when_field(condition: Condition) -> tuple[bool, _Field]:
    """(is a principal, field) for a `when` condition (keys checked by validation)."""
    key = condition.key or ""
    values, not_values = condition.values, condition.not_values
    if key in _PRINCIPAL_KEYS:
        return True, _Field(key, values, not_values, _PRINCIPAL_KEYS[key])
    if key in _PERMISSION_KEYS:
        return False, _Field(key, values, not_values, _PERMISSION_KEYS[key])
    if key.startswith("experimental.envoy.filters."):
        return False, _Field(key, values, not_values, _envoy_filter)
    if key.startswith("request.headers["):
        return True, _Field(key, values, not_values, _request_header)
    if key.startswith("request.experimental.inline.headers["):
        return True, _Field(key, values, not_values, _inline_header)
    if key == "request.auth.principal":
        return True, _Field(key, values, not_values, generate_all=_request_principals)
    if key == "request.auth.audiences":
        return True, _Field(key, values, not_values, generate_all=_claims(("aud",)))
    if key == "request.auth.presenter":
        return True, _Field(key, values, not_values, generate_all=_claims(("azp",)))
    if key.startswith("request.auth.claims["):
        return True, _Field(key, values, not_values, generate_all=_claims(_brackets(key)))
    raise ValueError(f"unknown attribute {key!r}")  # validation refuses these first


def _request_principals(values: tuple[str, ...]) -> Json:
    return _or([_request_principal(v) for v in values], principal=True)


def _and(items: list[Json], principal: bool) -> Json:
    if principal:
        return {"and_ids": {"ids": items or [{"any": True}]}}
    return {"and_rules": {"rules": items or [{"any": True}]}}


def rule_policy(rule: Rule, ctx: Context) -> Json:
    """The RBAC policy of one rule; raises HttpOnlyError (ALLOW on TCP) to skip it."""
    base_principals: list[_Field] = []
    base_permissions: list[_Field] = []
    for condition in rule.when:
        is_principal, field = _when_field(condition)
        (base_principals if is_principal else base_permissions).append(field)

    principals: list[Json] = []
    for rule_from in rule.from_ or (None,):
        fields: list[_Field] = []
        source = rule_from.source if rule_from is not None else None
        if source is not None:
            fields += [
                _Field("source.principal", source.principals, source.not_principals, _principal),
                _Field("source.trustDomain", source.trust_domains, source.not_trust_domains,
                       _trust_domain),
                _Field("request.auth.principal", source.request_principals,
                       source.not_request_principals, generate_all=_request_principals),
                _Field("source.serviceAccount", source.service_accounts,
                       source.not_service_accounts, _service_account),
                _Field("source.namespace", source.namespaces, source.not_namespaces, _namespace),
                _Field("remote.ip", source.remote_ip_blocks, source.not_remote_ip_blocks,
                       _remote_ip),
                _Field("source.ip", source.ip_blocks, source.not_ip_blocks, _source_ip),
            ]  # fmt: skip
        fields += base_principals
        items = [
            x for f in fields for x in _field_matchers(_with_aliases(f, ctx), ctx, principal=True)
        ]
        principals.append(_and(items, principal=True))

    permissions: list[Json] = []
    for rule_to in rule.to or (None,):
        fields = []
        operation = rule_to.operation if rule_to is not None else None
        if operation is not None:
            fields += [
                _Field("hosts", operation.hosts, operation.not_hosts, _host),
                _Field("methods", operation.methods, operation.not_methods, _method),
                _Field("paths", operation.paths, operation.not_paths, _path),
                _Field("destination.port", operation.ports, operation.not_ports, _port),
            ]
        fields += base_permissions
        items = [x for f in fields for x in _field_matchers(f, ctx, principal=False)]
        permissions.append(_and(items, principal=False))
    return {"permissions": permissions, "principals": principals}


MATCH_NEVER: Final[Json] = {
    "permissions": [{"not_rule": {"any": True}}],
    "principals": [{"not_id": {"any": True}}],
}
