"""security.istio.io rules: PeerAuthentication, AuthorizationPolicy, RequestAuthentication."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Final

from control.api.errors import shown
from control.api.models.base import LabelSelector, PolicyTargetReference
from control.api.models.security import (
    AuthorizationPolicy,
    Condition,
    JWTRule,
    Operation,
    PeerAuthentication,
    RequestAuthentication,
    Source,
)
from control.api.rules import common
from control.api.rules.context import Findings

# (group, kind) a policy may target; "" is the core group.
_TARGET_KINDS: Final = frozenset(
    {("", "Service"), ("networking.istio.io", "ServiceEntry"),
     ("gateway.networking.k8s.io", "Gateway")}
)  # fmt: skip
_EXACT_KEYS: Final = frozenset(
    {"source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount",
     "source.trustDomain", "request.auth.principal", "request.auth.audiences",
     "request.auth.presenter", "destination.ip", "destination.port", "connection.sni"}
)  # fmt: skip
_BRACKET_KEY: Final = re.compile(
    r"(request\.headers|request\.experimental\.inline\.headers|request\.auth\.claims)"
    r"\[[^\]]+\](\[[^\]]+\])*"
)
# Istio's path templates (AuthorizationPolicy paths): `{*}` one segment, `{**}` the rest.
_MATCH_ONE: Final = "{*}"
_MATCH_ANY: Final = "{**}"
# RFC 3986 pchar: the literal segments of a path template.
_PCHAR: Final = re.compile(r"[a-zA-Z0-9\-._~%!$&'()+,;:@=]+")
# An http(s) URL with a host (urllib is off limits in this pure package: it can do I/O).
_HTTP_URL: Final = re.compile(r"https?://[^/\s?#@]+(?:[/?#]\S*)?\Z")
_IP_KEYS: Final = frozenset({"source.ip", "remote.ip", "destination.ip"})


def check_peer_authentication(spec: PeerAuthentication, findings: Findings) -> None:
    no_selector = spec.selector is None or not spec.selector.match_labels
    if no_selector and spec.port_level_mtls:
        findings.error(
            "spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS"
        )
    if "port_level_mtls" in spec.model_fields_set and not spec.port_level_mtls:
        findings.error(
            "spec.portLevelMtls", "port level mTLS, if defined, must have at least one element"
        )
    for port in spec.port_level_mtls:
        if not 1 <= port <= 65535:
            findings.error(f"spec.portLevelMtls[{port}]", "port must be in range 1..65535")
    _check_selector(findings, spec.selector)
    mode = spec.mtls.mode if spec.mtls is not None else None
    if mode == "DISABLE" and no_selector:
        findings.warn(
            "spec.mtls.mode",
            "DISABLE without a selector turns mTLS off for every workload in scope",
        )


def _check_selector(findings: Findings, selector: LabelSelector | None) -> None:
    if selector is not None:
        common.check_selector_labels(findings, "spec.selector.matchLabels", selector.match_labels)


def _check_targets(
    findings: Findings,
    selector: LabelSelector | None,
    target_ref: PolicyTargetReference | None,
    target_refs: Sequence[PolicyTargetReference],
) -> None:
    if sum((selector is not None, target_ref is not None, bool(target_refs))) > 1:
        findings.error("spec", "only one of targetRefs or workloadSelector can be set")
    _check_selector(findings, selector)
    refs = [("spec.targetRef", target_ref)] if target_ref is not None else []
    refs += [(f"spec.targetRefs[{i}]", ref) for i, ref in enumerate(target_refs)]
    for where, ref in refs:
        if not ref.name:
            findings.error(f"{where}.name", "targetRef name must be set")
        if ref.namespace:
            findings.error(
                f"{where}.namespace",
                "targetRef namespace must not be set; cross namespace referencing is not supported",
            )
        if ((ref.group or ""), ref.kind or "") not in _TARGET_KINDS:
            findings.error(
                where,
                f"targetRef must be to a Service, ServiceEntry or Gateway but "
                f"was {ref.group or ''}/{ref.kind or ''}",
            )


def check_authorization_policy(spec: AuthorizationPolicy, findings: Findings) -> None:
    _check_targets(findings, spec.selector, spec.target_ref, spec.target_refs)
    action = spec.action or "ALLOW"
    if action == "CUSTOM":
        if not spec.rules:
            findings.error(
                "spec.rules",
                "CUSTOM action without `rules` is meaningless as it "
                "will never be triggered, add an empty rule `{}` if you want it be "
                "triggered for every request",
            )
        elif spec.provider is None or not spec.provider.name:
            findings.error("spec.provider.name", "`provider.name` must not be empty")
    if spec.provider is not None and action != "CUSTOM":
        findings.error(
            "spec.provider", f"`provider` must not be with non CUSTOM action, found {action}"
        )
    if action == "DENY" and not spec.rules:
        findings.error(
            "spec.rules",
            "DENY action without `rules` is meaningless as it will "
            "never be triggered, add an empty rule `{}` if you want it be triggered "
            "for every request",
        )
    for index, rule in enumerate(spec.rules):
        where = f"spec.rules[{index}]"
        if "from_" in rule.model_fields_set and not rule.from_:
            findings.error(f"{where}.from", f"`from` must not be empty, found at rule {index}")
        if "to" in rule.model_fields_set and not rule.to:
            findings.error(f"{where}.to", f"`to` must not be empty, found at rule {index}")
        tcp_from = tcp_to = False
        for f_index, rule_from in enumerate(rule.from_):
            at = f"{where}.from[{f_index}].source"
            if rule_from.source is None:
                findings.error(at, f"`from.source` must not be nil, found at rule {index}")
                continue
            _check_source(findings, at, rule_from.source, index, custom=action == "CUSTOM")
            tcp_from = tcp_from or _has_tcp_source_fields(rule_from.source)
        for t_index, rule_to in enumerate(rule.to):
            at = f"{where}.to[{t_index}].operation"
            if rule_to.operation is None:
                findings.error(at, f"`to.operation` must not be nil, found at rule {index}")
                continue
            _check_operation(findings, at, rule_to.operation, index)
            tcp_to = tcp_to or bool(rule_to.operation.ports or rule_to.operation.not_ports)
        for c_index, condition in enumerate(rule.when):
            _check_condition(
                findings, f"{where}.when[{c_index}]", condition, custom=action == "CUSTOM"
            )
        has_from = any(f.source is not None for f in rule.from_)
        has_to = any(t.operation is not None for t in rule.to)
        if action == "DENY" and (
            (has_from and not has_to and not tcp_from) or (has_to and not tcp_to)
        ):
            findings.warn(
                where,
                "configured AuthorizationPolicy will deny all traffic to TCP "
                "ports under its scope due to the use of only HTTP attributes in a "
                "DENY rule; it is recommended to explicitly specify the port",
            )


def _has_tcp_source_fields(source: Source) -> bool:
    return bool(
        source.principals
        or source.not_principals
        or source.ip_blocks
        or source.not_ip_blocks
        or source.namespaces
        or source.not_namespaces
        or source.remote_ip_blocks
        or source.not_remote_ip_blocks
    )


def _check_source(
    findings: Findings, path: str, source: Source, rule: int, *, custom: bool
) -> None:
    if not source.model_fields_set:
        findings.error(path, f"`from.source` must not be empty, found at rule {rule}")
    identities = (source.principals, source.not_principals, source.namespaces,
                  source.not_namespaces)  # fmt: skip
    if any(identities) and (source.service_accounts or source.not_service_accounts):
        findings.error(
            path, f"cannot set serviceAccounts with namespaces or principals, found at rule {rule}"
        )
    for field, values in (
        ("ipBlocks", source.ip_blocks),
        ("notIpBlocks", source.not_ip_blocks),
        ("remoteIpBlocks", source.remote_ip_blocks),
        ("notRemoteIpBlocks", source.not_remote_ip_blocks),
    ):
        for index, value in enumerate(values):
            if value and common.subnet_error(value):
                findings.error(
                    f"{path}.{field}[{index}]", f"invalid IP address or CIDR range: {shown(value)}"
                )
    for field, values in (
        ("principals", source.principals),
        ("notPrincipals", source.not_principals),
        ("requestPrincipals", source.request_principals),
        ("notRequestPrincipals", source.not_request_principals),
    ):
        for index, value in enumerate(values):
            if not value:
                findings.error(
                    f"{path}.{field}[{index}]", f"empty value not allowed, found in {field}"
                )
            if (
                field.lower().endswith("principals")
                and "request" not in field.lower()
                and value.startswith("spiffe://")
            ):
                findings.warn(
                    f"{path}.{field}[{index}]",
                    "principals are written without "
                    "spiffe:// (e.g. cluster.local/ns/default/sa/sleep)",
                )
            if custom:
                findings.error(
                    f"{path}.{field}",
                    f"From.{field[0].upper()}{field[1:]} is "
                    "currently not supported with CUSTOM action",
                )
                break
    for field, values in (
        ("namespaces", source.namespaces),
        ("notNamespaces", source.not_namespaces),
        ("trustDomains", source.trust_domains),
        ("notTrustDomains", source.not_trust_domains),
    ):
        for index, value in enumerate(values):
            # Istio checks only that a value is not empty (security.CheckEmptyValues).
            if not value:
                findings.error(
                    f"{path}.{field}[{index}]", f"empty value not allowed, found in {field}"
                )
        if custom and values:
            findings.error(
                f"{path}.{field}",
                f"From.{field[0].upper()}{field[1:]} is currently not supported with CUSTOM action",
            )
    for field, values in (
        ("serviceAccounts", source.service_accounts),
        ("notServiceAccounts", source.not_service_accounts),
    ):
        for index, value in enumerate(values):
            namespace, _, name = value.rpartition("/")
            malformed = value.count("/") > 1 or "*" in value or not name
            if malformed or (namespace and not common.is_dns1123_label(namespace)):
                findings.error(
                    f"{path}.{field}[{index}]",
                    f"{shown(value)} must be "
                    "<namespace>/<service account> or <service account>, without "
                    "wildcards",
                )
        if len(values) > 16:
            findings.error(f"{path}.{field}", "at most 16 service accounts are allowed")
    for field in ("ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks"):
        values = getattr(source, _snake(field))
        if any(not value for value in values):
            findings.error(f"{path}.{field}", f"empty value not allowed, found in {field}")


def _path_template_error(path: str) -> str | None:
    """Istio's CheckValidPathTemplate: `{*}` and `{**}` whole segments, `{**}` last, literal
    segments of RFC 3986 pchars once a template is used."""
    templated = _MATCH_ONE in path or _MATCH_ANY in path
    seen_any = False
    for segment in path.strip("/").split("/"):
        if segment in (_MATCH_ONE, _MATCH_ANY):
            if seen_any:
                return f"invalid or unsupported path {shown(path)}. {{**}} is not the last operator"
            seen_any = segment == _MATCH_ANY
            continue
        if "{" in segment or "}" in segment:
            return (
                f"invalid or unsupported path {shown(path)}. Contains '{{' or '}}' beyond a "
                "supported path template"
            )
        if templated and not _PCHAR.fullmatch(segment):
            return (
                f"invalid or unsupported path {shown(path)}. Contains segment "
                f"{shown(segment)} with invalid string literal"
            )
    return None


def _check_operation(findings: Findings, path: str, operation: Operation, rule: int) -> None:
    if not operation.model_fields_set:
        findings.error(path, f"`to.operation` must not be empty, found at rule {rule}")
    for field in ("hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"):
        for index, value in enumerate(getattr(operation, _snake(field))):
            where = f"{path}.{field}[{index}]"
            if not value:
                findings.error(where, f"empty value not allowed, found in {field}")
            elif field in ("paths", "notPaths") and (problem := _path_template_error(value)):
                findings.error(where, problem)
    for field, values in (("ports", operation.ports), ("notPorts", operation.not_ports)):
        for index, value in enumerate(values):
            if not common.is_port_text(value):
                findings.error(
                    f"{path}.{field}[{index}]",
                    f"invalid port {shown(value)}: must be a number in 1..65535",
                )


def _check_condition(findings: Findings, path: str, condition: Condition, *, custom: bool) -> None:
    key = condition.key or ""
    if not key:
        findings.error(f"{path}.key", "`key` must not be empty")
        return
    if not condition.values and not condition.not_values:
        findings.error(path, f"at least one of `values` or `notValues` must be set for key {key}")
        return
    if (
        key not in _EXACT_KEYS
        and not _BRACKET_KEY.fullmatch(key)
        and not key.startswith("experimental.envoy.filters.")
    ):
        findings.error(f"{path}.key", f"unknown attribute ({shown(key)})")
        return
    if custom and (
        key in {"source.namespace", "source.principal"} or key.startswith("request.auth.")
    ):
        findings.error(f"{path}.key", f"{key} is currently not supported with CUSTOM action")
    for field, values in (("values", condition.values), ("notValues", condition.not_values)):
        label = "value" if field == "values" else "notValue"
        for index, value in enumerate(values):
            where = f"{path}.{field}[{index}]"
            if key in _IP_KEYS and common.subnet_error(value):
                findings.error(
                    where,
                    f"invalid `{label}` for `key` {key}: invalid IP address or "
                    f"CIDR range: {shown(value)}",
                )
            elif key == "destination.port" and (not common.is_port_text(value)):
                findings.error(
                    where, f"invalid `{label}` for `key` {key}: invalid port {shown(value)}"
                )


@functools.cache
def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


def check_request_authentication(spec: RequestAuthentication, findings: Findings) -> None:
    _check_targets(findings, spec.selector, spec.target_ref, spec.target_refs)
    issuers: set[str] = set()
    for index, rule in enumerate(spec.jwt_rules):
        where = f"spec.jwtRules[{index}]"
        _check_jwt_rule(findings, where, rule)
        if rule.issuer and rule.issuer in issuers:
            findings.warn(
                f"{where}.issuer",
                f"issuer {shown(rule.issuer)} appears in more than one rule; the first one is used",
            )
        issuers.add(rule.issuer or "")


def _check_jwt_rule(findings: Findings, path: str, rule: JWTRule) -> None:
    if not rule.issuer and not rule.jwks_uri:
        findings.error(f"{path}.issuer", "issuer or jwksUri must be non-empty string")
    for index, audience in enumerate(rule.audiences):
        if not audience:
            findings.error(f"{path}.audiences[{index}]", "audience must be non-empty string")
    if rule.jwks_uri:
        _check_jwks_uri(findings, f"{path}.jwksUri", rule.jwks_uri)
    for index, claim_name in enumerate(rule.space_delimited_claims):
        if not claim_name:
            findings.error(
                f"{path}.spaceDelimitedClaims[{index}]", "claim name must be non-empty string"
            )
    if rule.presence is not None:
        findings.warn(
            f"{path}.presence",
            "presence is accepted but not enforced (Istio's control plane does not read it)",
        )
    if rule.jwks:
        _check_jwks(findings, f"{path}.jwks", rule.jwks)
    if rule.jwks and rule.jwks_uri:  # the CRD's CEL rule: the API server refuses it
        findings.error(path, "only one of jwks or jwksUri can be set")
    for index, header in enumerate(rule.from_headers):
        if not header.name:
            findings.error(
                f"{path}.fromHeaders[{index}].name", "location header name must be non-empty string"
            )
        else:  # Envoy refuses (NACKs) a header name with blanks or control characters
            common.check_header_name(findings, f"{path}.fromHeaders[{index}].name", header.name)
    if rule.output_payload_to_header:
        common.check_header_name(
            findings, f"{path}.outputPayloadToHeader", rule.output_payload_to_header
        )
    for index, param in enumerate(rule.from_params):
        if not param:
            findings.error(f"{path}.fromParams[{index}]", "location query must be non-empty string")
    for index, cookie in enumerate(rule.from_cookies):
        if not cookie:
            findings.error(f"{path}.fromCookies[{index}]", "cookie name must be non-empty string")
    for index, claim in enumerate(rule.output_claim_to_headers):
        where = f"{path}.outputClaimToHeaders[{index}]"
        if not claim.claim or not claim.header:
            findings.error(
                where, "outputClaimToHeaders header and claim value must be non-empty string"
            )
        else:
            common.check_header_name(findings, f"{where}.header", claim.header)


def _check_jwks_uri(findings: Findings, path: str, uri: str) -> None:
    """Istio's ParseJwksURI: an http(s) URL; a port, when given, is a number."""
    if not _HTTP_URL.match(uri):
        findings.error(path, f"jwks URI {shown(uri)} must be an http(s) URL with a host")
        return
    authority = uri.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host_port = authority.rsplit("]", 1)[-1]  # past an IPv6 literal's brackets
    if ":" in host_port:
        port = host_port.rsplit(":", 1)[1]
        if not (port.isascii() and port.isdigit()):
            findings.error(path, f"jwks URI {shown(uri)}: invalid port {shown(port)}")


def _check_jwks(findings: Findings, path: str, jwks: str) -> None:
    """A JSON Web Key Set (or a single key): JSON with `keys`, or a key with `kty`."""
    try:
        document = json.loads(jwks)
    except (ValueError, RecursionError):
        findings.error(path, "jwks parse error: not JSON")
        return
    keys = document.get("keys") if isinstance(document, dict) else None
    if isinstance(document, dict) and "kty" in document:
        return
    if not isinstance(keys, list) or not all(isinstance(k, dict) and "kty" in k for k in keys):
        findings.error(path, 'jwks parse error: expected a JSON Web Key Set ({"keys": [...]})')
