"""AuthorizationPolicies of one action -> one Envoy RBAC filter (HTTP or network), as Istio's
builder makes them: one RBAC policy per rule, named `ns[<ns>]-policy[<name>]-rule[<i>]`; a
policy without rules is a policy that never matches (an ALLOW policy with no rules therefore
allows nothing); `istio.io/dry-run` policies go to `shadow_rules` (evaluated, counted in stats
under `istio_dry_run_<action>_`, never enforced).

A filter comes in two forms from the same messages: packed (its `typed_config` an Any's
`type_url` and deterministic bytes: the listener's form, so a large policy set is serialized
once, not walked again by every chain that carries it and by the listener's memo key), or
protobuf JSON (a bootstrap, tests, debugging)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from envoy.config.rbac.v3 import rbac_pb2 as config_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_pb2
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from control.api.models.security import AuthorizationPolicy
from control.plane.xds.protowire import length_delimited
from control.plane.xds.translate.authz import wire
from control.plane.xds.translate.authz.matchers import Json
from control.plane.xds.translate.authz.model import (
    MATCH_NEVER,
    Context,
    RulePolicies,
    rule_policies,
)
from control.plane.xds.translate.authz.select import Selected

_T: Final = "type.googleapis.com/"
HTTP_RBAC: Final = "envoy.filters.http.rbac"
NETWORK_RBAC: Final = "envoy.filters.network.rbac"
HTTP_RBAC_TYPE: Final = _T + "envoy.extensions.filters.http.rbac.v3.RBAC"
NETWORK_RBAC_TYPE: Final = _T + "envoy.extensions.filters.network.rbac.v3.RBAC"
TCP_STAT_PREFIX: Final = "tcp."
# Enforced-rule stats per action: http.<hcm>.rbac.<prefix>.{allowed,denied}. (Envoy's LOG action
# counts every request as allowed: the audit count is the access logger's counter, inbound.py.)
RULES_STAT_PREFIX: Final = {"ALLOW": "istio_allow", "DENY": "istio_deny", "LOG": "istio_audit"}
SHADOW_STAT_PREFIX: Final = {"ALLOW": "istio_dry_run_allow_", "DENY": "istio_dry_run_deny_"}


def policy_name(namespace: str, name: str, rule: int, prefix: str = "") -> str:
    return f"{prefix}ns[{namespace}]-policy[{name}]-rule[{rule}]"


Named = tuple[tuple[str, bytes], ...]  # RBAC policy name -> its map entry (`wire.entry`)


@dataclass(frozen=True, slots=True)
class Built:
    action: str
    rules: Named | None  # enforced
    shadow: Named | None  # dry-run


@functools.lru_cache(maxsize=20_000)
def _translated(
    policy: Selected[AuthorizationPolicy], trust_domains: tuple[str, ...], allow: bool
) -> tuple[RulePolicies, ...]:
    """One policy's rules, each translated once for HTTP and TCP, memoized by the policy's
    content (its fingerprint): workloads under the same policies, both chain kinds and pushes
    that leave a policy unchanged reuse them."""
    ctx = Context(policy.namespace, trust_domains)
    return tuple(rule_policies(rule, ctx, allow) for rule in policy.body.rules)


@functools.lru_cache(maxsize=20_000)
def _policy_rules(
    policy: Selected[AuthorizationPolicy],
    for_tcp: bool,
    allow: bool,
    trust_domains: tuple[str, ...],
    name_prefix: str,
) -> Named:
    """One policy's RBAC policies by name, each as its serialized map entry (treat as
    immutable). A rule that uses an HTTP-only attribute in an ALLOW policy on TCP is left
    out: it cannot grant."""
    out: list[tuple[str, bytes]] = []
    for index, translated in enumerate(_translated(policy, trust_domains, allow)):
        found = translated.policy(for_tcp)
        if found is not None:
            name = policy_name(policy.namespace, policy.name, index, name_prefix)
            out.append((name, wire.entry(name, found)))
    if not policy.body.rules:
        name = policy_name(policy.namespace, policy.name, 0, name_prefix)
        out.append((name, wire.entry(name, MATCH_NEVER)))
    return tuple(out)


def clear_caches() -> None:
    """Forget every memoized translation (benchmarks measure cold translation with it)."""
    _translated.cache_clear()
    _policy_rules.cache_clear()


def build(
    policies: Iterable[Selected[AuthorizationPolicy]],
    action: str,
    *,
    for_tcp: bool,
    trust_domains: tuple[str, ...],
    name_prefix: str = "",
    allow_semantics: bool | None = None,
) -> Built | None:
    """`action`: ALLOW, DENY or LOG (AUDIT). `allow_semantics` decides how HTTP-only
    attributes fare on TCP (default: only ALLOW skips the rule)."""
    policies = list(policies)
    if not policies:
        return None
    allow = action == "ALLOW" if allow_semantics is None else allow_semantics
    enforced: list[tuple[str, bytes]] = []
    shadow: list[tuple[str, bytes]] = []
    has_enforced = has_shadow = False
    for policy in policies:
        target = shadow if policy.dry_run else enforced
        if policy.dry_run:
            has_shadow = True
        else:
            has_enforced = True
        target += _policy_rules(policy, for_tcp, allow, trust_domains, name_prefix)
    return Built(
        action,
        tuple(enforced) if has_enforced else None,
        tuple(shadow) if has_shadow else None,
    )


def renamed(built: Built, suffix: str) -> Built:
    """The enforced rules with `suffix` added to their names."""
    if built.rules is None:
        return built
    rules = tuple(
        (
            name + suffix,
            wire.entry(name + suffix, _policies(entry)[name].SerializeToString(deterministic=True)),
        )
        for name, entry in built.rules
    )
    return Built(built.action, rules, built.shadow)


def _policies(entries: bytes) -> Mapping[str, Message]:
    """Serialized map entries -> name -> Policy message (a later name wins)."""
    found: Mapping[str, Message] = config_pb2.RBAC.FromString(entries).policies
    return found


def as_shadow(built: Built) -> Built:
    """The enforced rules as shadow rules only (evaluated, never enforced)."""
    return Built(built.action, None, built.rules)


def _json(action: str, named: Named) -> Json:
    """Protobuf JSON of plain dicts and lists (json_format makes an Any an OrderedDict)."""
    policies = _policies(b"".join(entry for _, entry in named))
    return {
        "action": action,
        "policies": {
            name: json.loads(
                json_format.MessageToJson(policies[name], preserving_proto_field_name=True)
            )
            for name in dict(named)
        },
    }


def _typed_config(
    message: Message, type_url: str, fields: Json, built: Built, packed: bool
) -> Json:
    """`fields` (plain values) with the built rules, as an Any: packed or protobuf JSON."""
    if not packed:
        out: Json = {"@type": type_url, **fields}
        if built.rules is not None:
            out["rules"] = _json(built.action, built.rules)
        if built.shadow is not None:
            out["shadow_rules"] = _json(built.action, built.shadow)
        return out
    for key, value in fields.items():
        setattr(message, key, value)
    # `rules` (1) and `shadow_rules` (2) lead both filters' fields: written first, as
    # protobuf writes fields in number order.
    parts = [
        length_delimited(number, wire.rbac_config(built.action, named))
        for number, named in ((1, built.rules), (2, built.shadow))
        if named is not None
    ]
    parts.append(message.SerializeToString(deterministic=True))
    return {"type_url": type_url, "value": b"".join(parts)}


def http_filter(
    built: Built, action: str, *, packed: bool = False, shadow_stat_prefix: str | None = None
) -> Json:
    """`shadow_stat_prefix`: instead of the action's."""
    fields: Json = {}
    if built.rules is not None:
        fields["rules_stat_prefix"] = RULES_STAT_PREFIX[action]
    if built.shadow is not None:
        prefix = shadow_stat_prefix or SHADOW_STAT_PREFIX.get(action)
        if prefix is not None:
            fields["shadow_rules_stat_prefix"] = prefix
    config = _typed_config(http_pb2.RBAC(), HTTP_RBAC_TYPE, fields, built, packed)
    return {"name": HTTP_RBAC, "typed_config": config}


def network_filter(
    built: Built, action: str, *, packed: bool = False, shadow_stat_prefix: str | None = None
) -> Json:
    fields: Json = {"stat_prefix": TCP_STAT_PREFIX}
    if built.shadow is not None:
        prefix = shadow_stat_prefix or SHADOW_STAT_PREFIX.get(action)
        if prefix is not None:
            fields["shadow_rules_stat_prefix"] = prefix
    config = _typed_config(network_pb2.RBAC(), NETWORK_RBAC_TYPE, fields, built, packed)
    return {"name": NETWORK_RBAC, "typed_config": config}
