"""security.istio.io: PeerAuthentication, AuthorizationPolicy, RequestAuthentication."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.api.duration import Duration
from control.api.models.base import (
    ApiModel,
    Bool,
    LabelSelector,
    PolicyTargetReference,
    Str,
)

MtlsMode = Literal["UNSET", "DISABLE", "PERMISSIVE", "STRICT"]


class MutualTLS(ApiModel):
    mode: MtlsMode | None = None


class PeerAuthentication(ApiModel):
    """The spec of a PeerAuthentication: which mTLS mode a workload's inbound traffic needs."""

    selector: LabelSelector | None = None
    mtls: MutualTLS | None = None
    # Map keys are strings in JSON and integers in YAML: both are read as port numbers.
    port_level_mtls: dict[int, MutualTLS] = Field(default_factory=dict)


class Source(ApiModel):
    principals: tuple[Str, ...] = ()
    not_principals: tuple[Str, ...] = ()
    request_principals: tuple[Str, ...] = ()
    not_request_principals: tuple[Str, ...] = ()
    namespaces: tuple[Str, ...] = ()
    not_namespaces: tuple[Str, ...] = ()
    ip_blocks: tuple[Str, ...] = ()
    not_ip_blocks: tuple[Str, ...] = ()
    remote_ip_blocks: tuple[Str, ...] = ()
    not_remote_ip_blocks: tuple[Str, ...] = ()
    service_accounts: tuple[Str, ...] = ()
    """`<namespace>/<name>`, or `<name>` in the policy's namespace."""
    not_service_accounts: tuple[Str, ...] = ()
    trust_domains: tuple[Str, ...] = ()
    """The peer's trust domain (from its certificate): exact, `prefix*`, `*suffix` or `*`."""
    not_trust_domains: tuple[Str, ...] = ()


class Operation(ApiModel):
    hosts: tuple[Str, ...] = ()
    not_hosts: tuple[Str, ...] = ()
    ports: tuple[Str, ...] = ()
    not_ports: tuple[Str, ...] = ()
    methods: tuple[Str, ...] = ()
    not_methods: tuple[Str, ...] = ()
    paths: tuple[Str, ...] = ()
    not_paths: tuple[Str, ...] = ()


class RuleFrom(ApiModel):
    source: Source | None = None


class RuleTo(ApiModel):
    operation: Operation | None = None


class Condition(ApiModel):
    key: Str | None = None
    values: tuple[Str, ...] = ()
    not_values: tuple[Str, ...] = ()


class Rule(ApiModel):
    """Matches when every present field matches: from (any of), to (any of), when (all of)."""

    from_: tuple[RuleFrom, ...] = Field(default=(), alias="from")
    to: tuple[RuleTo, ...] = ()
    when: tuple[Condition, ...] = ()


class ExtensionProvider(ApiModel):
    name: Str | None = None


class AuthorizationPolicy(ApiModel):
    """The spec of an AuthorizationPolicy."""

    selector: LabelSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    rules: tuple[Rule, ...] = ()
    action: Literal["ALLOW", "DENY", "AUDIT", "CUSTOM"] | None = None
    provider: ExtensionProvider | None = None


class JWTHeader(ApiModel):
    name: Str | None = None
    prefix: Str | None = None


class ClaimToHeader(ApiModel):
    header: Str | None = None
    claim: Str | None = None


class JWTRule(ApiModel):
    issuer: Str | None = None
    audiences: tuple[Str, ...] = ()
    jwks_uri: Str | None = None
    jwks: Str | None = None
    from_headers: tuple[JWTHeader, ...] = ()
    from_params: tuple[Str, ...] = ()
    from_cookies: tuple[Str, ...] = ()
    output_payload_to_header: Str | None = None
    forward_original_token: Bool | None = None
    output_claim_to_headers: tuple[ClaimToHeader, ...] = ()
    timeout: Duration | None = None
    space_delimited_claims: tuple[Str, ...] = ()
    presence: Str | None = None
    """In Istio's schema but not read by its control plane: accepted, never enforced."""


class RequestAuthentication(ApiModel):
    """The spec of a RequestAuthentication: which JWTs a workload accepts."""

    selector: LabelSelector | None = None
    target_ref: PolicyTargetReference | None = None
    target_refs: tuple[PolicyTargetReference, ...] = ()
    jwt_rules: tuple[JWTRule, ...] = ()
