"""AuthorizationPolicies of one action -> one Envoy RBAC filter (HTTP or network), as Istio's
builder makes them: one RBAC policy per rule, named `ns[<ns>]-policy[<name>]-rule[<i>]`; a
policy without rules is a policy that never matches (an ALLOW policy with no rules therefore
allows nothing); `istio.io/dry-run` policies go to `shadow_rules` (evaluated, counted in stats
under `istio_dry_run_<action>_`, never enforced)."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from control.api.models.security import AuthorizationPolicy
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


@dataclass(frozen=True, slots=True)
class Built:
    rules: Json | None  # enforced
    shadow: Json | None  # dry-run


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
) -> tuple[tuple[str, Json], ...]:
    """One policy's RBAC policies by name (treat as immutable). A rule that uses an HTTP-only
    attribute in an ALLOW policy on TCP is left out: it cannot grant."""
    out: list[tuple[str, Json]] = []
    for index, translated in enumerate(_translated(policy, trust_domains, allow)):
        found = translated.policy(for_tcp)
        if found is not None:
            out.append((policy_name(policy.namespace, policy.name, index, name_prefix), found))
    if not policy.body.rules:
        out.append((policy_name(policy.namespace, policy.name, 0, name_prefix), MATCH_NEVER))
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
    enforced: dict[str, Json] = {}
    shadow: dict[str, Json] = {}
    has_enforced = has_shadow = False
    for policy in policies:
        target = shadow if policy.dry_run else enforced
        if policy.dry_run:
            has_shadow = True
        else:
            has_enforced = True
        target.update(_policy_rules(policy, for_tcp, allow, trust_domains, name_prefix))
    return Built(
        {"action": action, "policies": enforced} if has_enforced else None,
        {"action": action, "policies": shadow} if has_shadow else None,
    )


def http_filter(built: Built, action: str) -> Json:
    config: Json = {"@type": HTTP_RBAC_TYPE}
    if built.rules is not None:
        config["rules"] = built.rules
        config["rules_stat_prefix"] = RULES_STAT_PREFIX[action]
    if built.shadow is not None:
        config["shadow_rules"] = built.shadow
        if action in SHADOW_STAT_PREFIX:
            config["shadow_rules_stat_prefix"] = SHADOW_STAT_PREFIX[action]
    return {"name": HTTP_RBAC, "typed_config": config}


def network_filter(built: Built, action: str) -> Json:
    config: Json = {"@type": NETWORK_RBAC_TYPE, "stat_prefix": TCP_STAT_PREFIX}
    if built.rules is not None:
        config["rules"] = built.rules
    if built.shadow is not None:
        config["shadow_rules"] = built.shadow
        if action in SHADOW_STAT_PREFIX:
            config["shadow_rules_stat_prefix"] = SHADOW_STAT_PREFIX[action]
    return {"name": NETWORK_RBAC, "typed_config": config}
