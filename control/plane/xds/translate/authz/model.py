"""One AuthorizationPolicy rule -> one Envoy RBAC policy, with Istio's semantics
(pilot/pkg/security/authz/model): `from` entries become OR'd principals and `to` entries OR'd
permissions, each an AND of its fields; `when` conditions join every principal (source and
request attributes) or every permission (destination and connection attributes). A field's
`values` are OR'd; its `notValues` are OR'd under a NOT.

On a TCP filter chain an HTTP-only attribute cannot be checked. As Istio does
(`rule.checkError`): in an ALLOW policy the whole rule is skipped (`RulePolicies.tcp` is None:
it can never grant); in a DENY or AUDIT (or CUSTOM) policy only that attribute is dropped and
the rest of the rule kept, so the rule matches more (fails closed)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from envoy.config.rbac.v3 import rbac_pb2
from google.protobuf.message import Message

from control.api.models.security import Rule
from control.plane.xds.translate.authz import matchers as m
from control.plane.xds.translate.authz.matchers import Json
from control.plane.xds.translate.authz.trustdomain import principal_aliases, trust_domain_aliases
from control.plane.xds.translate.protodict import to_message


@dataclass(frozen=True, slots=True)
class Context:
    policy_namespace: str
    trust_domains: tuple[str, ...] = ()  # the mesh's trust domain first, then its aliases


OneValue = Callable[[str, Context], Json]  # one value -> one principal/permission
AllValues = Callable[[Sequence[str], Context], Json]  # all values -> one (their OR)
Expander = Callable[[Sequence[str], Sequence[str]], list[str]]


def _authenticated(matcher: Json) -> Json:
    return {"authenticated": {"principal_name": matcher}}


def _principal(value: str, ctx: Context) -> Json:
    return {"authenticated": {"principal_name": m.string(value, prefix=m.SPIFFE)}}


def _namespace(value: str, ctx: Context) -> Json:
    return {"authenticated": {"principal_name": m.namespace_regex(value)}}


def _trust_domain(value: str, ctx: Context) -> Json:
    return {"authenticated": {"principal_name": m.trust_domain(value)}}


def _service_account(value: str, ctx: Context) -> Json:
    return _authenticated(m.service_account_regex(value, ctx.policy_namespace))


def _source_ip(value: str, ctx: Context) -> Json:
    return {"direct_remote_ip": m.cidr(value)}


def _remote_ip(value: str, ctx: Context) -> Json:
    return {"remote_ip": m.cidr(value)}


def _request_header(name: str) -> OneValue:
    def one(value: str, ctx: Context) -> Json:
        return {"header": m.header(name, value)}

    return one


def _inline_header(name: str) -> OneValue:
    def one(value: str, ctx: Context) -> Json:
        return {"header": m.inline_header(name, value)}

    return one


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


def _request_principals(values: Sequence[str], ctx: Context) -> Json:
    if len(values) == 1:
        return _request_principal(values[0])
    return {"or_ids": {"ids": [_request_principal(v) for v in values]}}


def _claims(path: tuple[str, ...]) -> AllValues:
    def build(values: Sequence[str], ctx: Context) -> Json:
        return {"metadata": m.jwt_claim(path, m.claim_values(tuple(values)))}

    return build


def _host(value: str, ctx: Context) -> Json:
    return {"header": m.header(":authority", value, ignore_case=True)}


def _method(value: str, ctx: Context) -> Json:
    return {"header": m.header(":method", value)}


def _path(value: str, ctx: Context) -> Json:
    if m.is_path_template(value):
        return {"uri_template": m.uri_template(value)}
    return {"url_path": {"path": m.string(value)}}


def _port(value: str, ctx: Context) -> Json:
    return {"destination_port": int(value)}


def _destination_ip(value: str, ctx: Context) -> Json:
    return {"destination_ip": m.cidr(value)}


def _sni(value: str, ctx: Context) -> Json:
    return {"requested_server_name": m.string(value)}


def _envoy_filter(key: str) -> OneValue:
    """`experimental.envoy.filters.<filter>[<key>]`: a string in that filter's dynamic
    metadata, or (`[v]`) a list holding v (Istio's experimental attribute)."""
    name, _, rest = key.removeprefix("experimental.").partition("[")
    field = rest.removesuffix("]")

    def one(value: str, ctx: Context) -> Json:
        if value.startswith("[") and value.endswith("]"):
            matcher: Json = {"list_match": {"one_of": {"string_match": m.string(value[1:-1])}}}
        else:
            matcher = {"string_match": m.string(value)}
        return {"metadata": {"filter": name, "path": [{"key": field}], "value": matcher}}

    return one


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


def _any_of(one: OneValue, principal: bool) -> AllValues:
    """Values OR'd (a single one as it is)."""
    if principal:

        def ids(values: Sequence[str], ctx: Context) -> Json:
            if len(values) == 1:
                return one(values[0], ctx)
            return {"or_ids": {"ids": [one(v, ctx) for v in values]}}

        return ids

    def rules(values: Sequence[str], ctx: Context) -> Json:
        if len(values) == 1:
            return one(values[0], ctx)
        return {"or_rules": {"rules": [one(v, ctx) for v in values]}}

    return rules


@dataclass(frozen=True, slots=True)
class _Attribute:
    """How one attribute's values become a matcher; made once per attribute key."""

    key: str
    principal: bool  # joins the principals (else the permissions)
    build: AllValues
    expand: Expander | None = None  # Istio's trust-domain migration (see `trustdomain`)
    http_only: bool = False
    negate: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "http_only", is_http_only(self.key))
        object.__setattr__(self, "negate", "not_id" if self.principal else "not_rule")


def _principal_attr(key: str, one: OneValue, expand: Expander | None = None) -> _Attribute:
    return _Attribute(key, True, _any_of(one, True), expand)


def _permission_attr(key: str, one: OneValue) -> _Attribute:
    return _Attribute(key, False, _any_of(one, False))


_FIXED_KEYS: Final[dict[str, _Attribute]] = {
    "source.ip": _principal_attr("source.ip", _source_ip),
    "remote.ip": _principal_attr("remote.ip", _remote_ip),
    "source.namespace": _principal_attr("source.namespace", _namespace),
    "source.principal": _principal_attr("source.principal", _principal, principal_aliases),
    "source.serviceAccount": _principal_attr("source.serviceAccount", _service_account),
    "source.trustDomain": _principal_attr(
        "source.trustDomain", _trust_domain, trust_domain_aliases
    ),
    "request.auth.principal": _Attribute("request.auth.principal", True, _request_principals),
    "request.auth.audiences": _Attribute("request.auth.audiences", True, _claims(("aud",))),
    "request.auth.presenter": _Attribute("request.auth.presenter", True, _claims(("azp",))),
    "destination.ip": _permission_attr("destination.ip", _destination_ip),
    "destination.port": _permission_attr("destination.port", _port),
    "connection.sni": _permission_attr("connection.sni", _sni),
    "hosts": _permission_attr("hosts", _host),
    "methods": _permission_attr("methods", _method),
    "paths": _permission_attr("paths", _path),
}


@functools.lru_cache(maxsize=4096)
def _attribute(key: str) -> _Attribute:
    """A `when` key's attribute (keys are checked by validation)."""
    fixed = _FIXED_KEYS.get(key)
    if fixed is not None:
        return fixed
    if key.startswith("experimental.envoy.filters."):
        return _permission_attr(key, _envoy_filter(key))
    if key.startswith("request.headers["):
        return _principal_attr(key, _request_header(_brackets(key)[0]))
    if key.startswith("request.experimental.inline.headers["):
        return _principal_attr(key, _inline_header(_brackets(key)[0]))
    if key.startswith("request.auth.claims["):
        return _Attribute(key, True, _claims(_brackets(key)))
    raise ValueError(f"unknown attribute {key!r}")  # validation refuses these first


Tagged = tuple[bool, Json]  # (HTTP only, matcher)


def _add(
    attribute: _Attribute,
    values: Sequence[str],
    not_values: Sequence[str],
    ctx: Context,
    out: list[Tagged],
) -> None:
    """The attribute's matchers (values OR'd; notValues OR'd under a NOT), appended to out."""
    if attribute.expand is not None:
        values = attribute.expand(values, ctx.trust_domains) if values else values
        not_values = attribute.expand(not_values, ctx.trust_domains) if not_values else ()
    if values:
        out.append((attribute.http_only, attribute.build(values, ctx)))
    if not_values:
        out.append((attribute.http_only, {attribute.negate: attribute.build(not_values, ctx)}))


# (values attribute, notValues attribute, attribute), in the order of the RBAC output.
_SOURCE_FIELDS: Final = tuple(
    (name, f"not_{name}", _FIXED_KEYS[key])
    for name, key in (
        ("principals", "source.principal"),
        ("trust_domains", "source.trustDomain"),
        ("request_principals", "request.auth.principal"),
        ("service_accounts", "source.serviceAccount"),
        ("namespaces", "source.namespace"),
        ("remote_ip_blocks", "remote.ip"),
        ("ip_blocks", "source.ip"),
    )
)
_OPERATION_FIELDS: Final = tuple(
    (name, f"not_{name}", _FIXED_KEYS[key])
    for name, key in (
        ("hosts", "hosts"),
        ("methods", "methods"),
        ("paths", "paths"),
        ("ports", "destination.port"),
    )
)
_ANY_ID: Final[list[Json]] = [{"any": True}]
_ANY_RULE: Final[list[Json]] = [{"any": True}]


@dataclass(frozen=True, slots=True)
class RulePolicies:
    """One rule's RBAC policy (an `envoy.config.rbac.v3.Policy`, serialized deterministically)
    on an HTTP chain and on a TCP chain, for the policy's action (ALLOW semantics or not); the
    two are one when the rule has no HTTP-only attribute. Bytes, not the dicts they are made
    from: the memos keep thousands of these, and bytes are one object the cyclic collector
    never walks."""

    http: bytes
    tcp: bytes | None  # None: the rule is skipped (an HTTP-only attribute in ALLOW)

    def policy(self, for_tcp: bool) -> bytes | None:
        return self.tcp if for_tcp else self.http


def _serialized(policy: Json) -> bytes:
    message: Message = to_message(policy, rbac_pb2.Policy)
    return message.SerializeToString(deterministic=True)


def _assemble(principals: list[list[Tagged]], permissions: list[list[Tagged]], tcp: bool) -> Json:
    return {
        "permissions": [
            {"and_rules": {"rules": [m for h, m in p if not (tcp and h)] or _ANY_RULE}}
            for p in permissions
        ],
        "principals": [
            {"and_ids": {"ids": [m for h, m in p if not (tcp and h)] or _ANY_ID}}
            for p in principals
        ],
    }


def rule_policies(rule: Rule, ctx: Context, allow: bool) -> RulePolicies:
    """`allow`: ALLOW semantics on TCP (a rule with an HTTP-only attribute is skipped), else
    DENY's (that attribute is dropped, the rest kept)."""
    base_principals: list[Tagged] = []
    base_permissions: list[Tagged] = []
    for condition in rule.when:
        attribute = _attribute(condition.key or "")
        if condition.values or condition.not_values:
            out = base_principals if attribute.principal else base_permissions
            _add(attribute, condition.values, condition.not_values, ctx, out)

    principals: list[list[Tagged]] = []
    for rule_from in rule.from_ or (None,):
        items: list[Tagged] = []
        source = rule_from.source if rule_from is not None else None
        if source is not None:
            given = source.model_fields_set  # the fields the policy names
            for name, not_name, attribute in _SOURCE_FIELDS:
                if name in given or not_name in given:
                    values, not_values = getattr(source, name), getattr(source, not_name)
                    if values or not_values:
                        _add(attribute, values, not_values, ctx, items)
        principals.append(items + base_principals if base_principals else items)

    permissions: list[list[Tagged]] = []
    for rule_to in rule.to or (None,):
        items = []
        operation = rule_to.operation if rule_to is not None else None
        if operation is not None:
            given = operation.model_fields_set  # the fields the policy names
            for name, not_name, attribute in _OPERATION_FIELDS:
                if name in given or not_name in given:
                    values, not_values = getattr(operation, name), getattr(operation, not_name)
                    if values or not_values:
                        _add(attribute, values, not_values, ctx, items)
        permissions.append(items + base_permissions if base_permissions else items)
    http = _assemble(principals, permissions, tcp=False)
    http_only = any(h for group in principals for h, _ in group) or any(
        h for group in permissions for h, _ in group
    )
    serialized = _serialized(http)
    if not http_only:
        return RulePolicies(serialized, serialized)
    tcp = None if allow else _serialized(_assemble(principals, permissions, tcp=True))
    return RulePolicies(serialized, tcp)


MATCH_NEVER: Final[bytes] = _serialized(
    {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}
)
