"""VirtualService rules (Istio's ValidateVirtualService and validateHTTPRoute)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from control.api.duration import parse_millis
from control.api.errors import shown
from control.api.models.base import StringMatch
from control.api.models.virtual_service import (
    HTTPMatchRequest,
    HTTPRoute,
    L4MatchAttributes,
    TCPRoute,
    TLSMatchAttributes,
    TLSRoute,
    VirtualService,
)
from control.api.rules import common, http_parts
from control.api.rules.context import Findings
from control.api.rules.hosts import HostSet, duplicate_hosts

MESH_GATEWAY: Final = "mesh"
_JWT_CLAIM_PREFIX: Final = "@request.auth.claims"


def check(spec: VirtualService, findings: Findings) -> None:
    delegate = not spec.hosts
    if delegate:
        # A VirtualService without hosts is a delegate: only HTTP routes, reached from a root.
        if spec.gateways:
            findings.error(
                "spec.gateways", "delegate virtual service must have no gateways specified"
            )
        if spec.tls:
            findings.error("spec.tls", "delegate virtual service must have no tls route specified")
        if spec.tcp:
            findings.error("spec.tcp", "delegate virtual service must have no tcp route specified")
    to_mesh = not spec.gateways or MESH_GATEWAY in spec.gateways
    check_gateway_names(findings, "spec.gateways", spec.gateways)
    if any(g != MESH_GATEWAY for g in spec.gateways):
        findings.warn(
            "spec.gateways",
            "mizzen serves the mesh gateway only; routes bound to "
            "other gateways are not programmed",
        )
    _check_hosts(findings, spec, to_mesh=to_mesh)
    if not spec.http and not spec.tcp and not spec.tls:
        findings.error("spec", "http, tcp or tls must be provided in virtual service")
    for index, route in enumerate(spec.http):
        _check_http_route(findings, f"spec.http[{index}]", route, delegate=delegate)
    hosts = HostSet(spec.hosts)
    for index, tls in enumerate(spec.tls):
        where = f"spec.tls[{index}]"
        if not tls.match:
            findings.error(f"{where}.match", "TLS route must have at least one match condition")
        for m_index, match in enumerate(tls.match):
            _check_tls_match(findings, f"{where}.match[{m_index}]", match, hosts)
        if not tls.route:
            findings.error(f"{where}.route", "TLS route is required")
        http_parts.check_weights(findings, f"{where}.route", tls.route)
    for index, tcp in enumerate(spec.tcp):
        where = f"spec.tcp[{index}]"
        for m_index, l4 in enumerate(tcp.match):
            _check_l4_match(findings, f"{where}.match[{m_index}]", l4)
        if not tcp.route:
            findings.error(f"{where}.route", "TCP route is required")
        http_parts.check_weights(findings, f"{where}.route", tcp.route)
    common.check_export_to(findings, "spec.exportTo", spec.export_to)
    _warn_unreachable(findings, spec)


def check_gateway_names(findings: Findings, path: str, gateways: tuple[str, ...]) -> None:
    for index, gateway in enumerate(gateways):
        where = f"{path}[{index}]"
        namespace, slash, name = gateway.partition("/")
        if not slash:
            problem = common.fqdn_error(gateway)
            if problem:
                findings.error(where, problem)
            continue
        if not namespace or not name:
            findings.error(where, "config namespace and gateway name cannot be empty")
        elif not common.is_dns1123_label(namespace):
            findings.error(where, f"invalid value for namespace: {shown(namespace)}")
        elif not common.is_dns1123_label(name):
            findings.error(where, f"invalid value for gateway name: {shown(name)}")


def _check_hosts(findings: Findings, spec: VirtualService, *, to_mesh: bool) -> None:
    valid = True
    for index, host in enumerate(spec.hosts):
        problem = common.wildcard_domain_error(host)
        if problem and not common.is_ip(host):
            findings.error(f"spec.hosts[{index}]", problem)
            valid = False
        elif host == "*" and to_mesh:
            findings.error(
                f"spec.hosts[{index}]",
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            )
            valid = False
    if not valid:
        return
    for first, second in duplicate_hosts(spec.hosts):
        findings.error("spec.hosts", f"duplicate hosts in virtual service: {first} & {second}")


def _check_http_route(findings: Findings, path: str, route: HTTPRoute, *, delegate: bool) -> None:
    root = route.delegate is not None
    if root:
        if route.redirect is not None:
            findings.error(
                f"{path}.redirect", f"root HTTP route {route.name or ''} must not specify redirect"
            )
        if route.route:
            findings.error(
                f"{path}.route", f"root HTTP route {route.name or ''} must not specify route"
            )
        if delegate:
            findings.error(f"{path}.delegate", "delegate HTTP route cannot contain delegate")
        d_name = route.delegate.name if route.delegate else None
        if not d_name or not common.is_dns1123_label(d_name):
            findings.error(
                f"{path}.delegate.name", f"delegate name {shown(d_name or '')} is invalid"
            )
    else:
        _check_route_kind(findings, path, route)
    for index, match in enumerate(route.match):
        _check_http_match(findings, f"{path}.match[{index}]", match, delegating=delegate or root)
    if route.headers is not None:
        http_parts.check_headers(findings, f"{path}.headers", route.headers)
    authorities = http_parts.authority_rewrites(route.rewrite, route.headers)
    if len(authorities) > 1:
        findings.error(
            path,
            f"authority header cannot be set multiple times: have "
            f"{shown(authorities[0])}, attempting to set {shown(authorities[1])}",
        )
    if route.cors_policy is not None:
        http_parts.check_cors(findings, f"{path}.corsPolicy", route.cors_policy)
    if route.fault is not None:
        http_parts.check_fault(findings, f"{path}.fault", route.fault)
    _check_mirrors(findings, path, route)
    if route.redirect is not None:
        http_parts.check_redirect(findings, f"{path}.redirect", route.redirect)
    if route.direct_response is not None:
        http_parts.check_direct_response(findings, f"{path}.directResponse", route.direct_response)
    if route.retries is not None:
        http_parts.check_retries(findings, f"{path}.retries", route.retries)
    if route.rewrite is not None:
        http_parts.check_rewrite(findings, f"{path}.rewrite", route.rewrite)
    http_parts.check_weights(findings, f"{path}.route", route.route)
    _warn_timeouts(findings, path, route)


def _check_route_kind(findings: Findings, path: str, route: HTTPRoute) -> None:
    """One of route, redirect or directResponse; redirect excludes fault and rewrite."""
    if route.redirect is not None:
        if route.route:
            findings.error(path, "HTTP route cannot contain both route and redirect")
        if route.fault is not None:
            findings.error(path, "HTTP route cannot contain both fault and redirect")
        if route.rewrite is not None:
            findings.error(path, "HTTP route rule cannot contain both rewrite and redirect")
    if route.direct_response is not None:
        if route.route:
            findings.error(path, "HTTP route cannot contain both route and direct_response")
        if route.redirect is not None:
            findings.error(path, "HTTP route cannot contain both redirect and direct_response")
    if not route.route and route.redirect is None and route.direct_response is None:
        findings.error(path, "HTTP route, redirect or direct_response is required")


def _check_http_match(
    findings: Findings, path: str, match: HTTPMatchRequest, *, delegating: bool
) -> None:
    singles: tuple[tuple[str, StringMatch | None], ...] = (
        ("uri", match.uri),
        ("scheme", match.scheme),
        ("method", match.method),
        ("authority", match.authority),
    )
    for field, string_match in singles:
        if string_match is None:
            continue
        if delegating and string_match.regex is not None:
            findings.error(
                f"{path}.{field}", f"{field} match does not support regex match for delegating"
            )
        common.check_string_match(findings, f"{path}.{field}", string_match)
    maps = (
        ("headers", match.headers),
        ("queryParams", match.query_params),
        ("withoutHeaders", match.without_headers),
    )
    for field, entries in maps:
        for key, string_match in entries.items():
            where = f"{path}.{field}[{key}]"
            if field != "queryParams":
                if key.startswith(_JWT_CLAIM_PREFIX):
                    findings.error(
                        where, f"JWT claim based routing (key: {key}) is only supported for gateway"
                    )
                else:
                    common.check_match_header_name(findings, where, key)
            if delegating and string_match.regex is not None:
                findings.error(
                    where, f"{field} match {key} does not support regex match for delegating"
                )
            common.check_string_match(findings, where, string_match)
    if match.port:
        common.check_port(findings, f"{path}.port", match.port)
    common.check_labels(findings, f"{path}.sourceLabels", match.source_labels)
    check_gateway_names(findings, f"{path}.gateways", match.gateways)
    if match.source_namespace and not common.is_dns1123_label(match.source_namespace):
        findings.error(
            f"{path}.sourceNamespace",
            f"sourceNamespace match {shown(match.source_namespace)} is invalid",
        )


def _check_mirrors(findings: Findings, path: str, route: HTTPRoute) -> None:
    if route.mirror is not None and route.mirrors:
        findings.error(path, "HTTP route cannot contain both mirror and mirrors")
    if route.mirror is not None:
        http_parts.check_destination(findings, f"{path}.mirror", route.mirror)
    if route.mirror_percent is not None:
        if route.mirror_percent > 100:
            findings.error(
                f"{path}.mirrorPercent",
                f"mirror_percent must have a max value of 100 (it has {route.mirror_percent})",
            )
        findings.warn(
            f"{path}.mirrorPercent",
            'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
        )
    for field, percent in [("mirrorPercentage", route.mirror_percentage)] + [
        (f"mirrors[{i}].percentage", m.percentage) for i, m in enumerate(route.mirrors)
    ]:
        value = percent.value if percent is not None else None
        if value is not None and value > 100:
            findings.error(
                f"{path}.{field}",
                f"mirror percentage must have a max value of 100 (it has {value})",
            )
        if value is not None and value < 0:
            findings.error(
                f"{path}.{field}", f"mirror percentage must have a min value of 0 (it has {value})"
            )
    for index, mirror in enumerate(route.mirrors):
        if mirror.destination is None:
            findings.error(f"{path}.mirrors[{index}]", "destination is required for mirrors")
        else:
            http_parts.check_destination(
                findings, f"{path}.mirrors[{index}].destination", mirror.destination
            )


def _warn_timeouts(findings: Findings, path: str, route: HTTPRoute) -> None:
    retries = route.retries
    if route.timeout is None or retries is None or retries.per_try_timeout is None:
        return
    if parse_millis(retries.per_try_timeout) > parse_millis(route.timeout):
        findings.warn(
            f"{path}.retries.perTryTimeout",
            f"perTryTimeout {retries.per_try_timeout} "
            f"is longer than the route timeout {route.timeout}",
        )


def _check_tls_match(
    findings: Findings, path: str, match: TLSMatchAttributes, hosts: HostSet
) -> None:
    if not match.sni_hosts:
        findings.error(f"{path}.sniHosts", "TLS match must have at least one SNI host")
    for index, sni in enumerate(match.sni_hosts):
        where = f"{path}.sniHosts[{index}]"
        problem = common.wildcard_domain_error(sni)
        if problem:
            if common.is_ip(sni):
                findings.warn(
                    where,
                    f"using an IP address ({shown(sni)}) goes against SNI spec "
                    "and most clients do not support this",
                )
            else:
                findings.error(where, problem)
            continue
        if not hosts.covers(sni):
            findings.error(
                where,
                f"SNI host {shown(sni)} is not a compatible subset of any of the "
                f"virtual service hosts: [{hosts.listed()}]",
            )
    _check_l4_common(findings, path, match.destination_subnets, match.port)
    common.check_labels(findings, f"{path}.sourceLabels", match.source_labels)
    check_gateway_names(findings, f"{path}.gateways", match.gateways)


def _check_l4_match(findings: Findings, path: str, match: L4MatchAttributes) -> None:
    _check_l4_common(findings, path, match.destination_subnets, match.port)
    if match.source_subnet:
        problem = common.subnet_error(match.source_subnet)
        if problem:
            findings.error(f"{path}.sourceSubnet", problem)
    common.check_labels(findings, f"{path}.sourceLabels", match.source_labels)
    check_gateway_names(findings, f"{path}.gateways", match.gateways)


def _check_l4_common(
    findings: Findings, path: str, subnets: tuple[str, ...], port: int | None
) -> None:
    for index, subnet in enumerate(subnets):
        problem = common.subnet_error(subnet)
        if problem:
            findings.error(f"{path}.destinationSubnets[{index}]", problem)
    if port:
        common.check_port(findings, f"{path}.port", port)


def _warn_unreachable(findings: Findings, spec: VirtualService) -> None:
    """Rules after a catch-all and matches repeated from earlier rules never take traffic."""
    tables: tuple[tuple[str, Sequence[HTTPRoute | TCPRoute | TLSRoute]], ...] = (
        ("http", spec.http),
        ("tcp", spec.tcp),
        ("tls", spec.tls),
    )
    for field, routes in tables:
        seen: dict[str, int] = {}
        catch_all = -1
        for index, route in enumerate(routes):
            name = f'"{route.name}"' if isinstance(route, HTTPRoute) and route.name else f"#{index}"
            if not route.match:
                if catch_all >= 0:
                    findings.warn(
                        f"spec.{field}[{index}]",
                        f"virtualService rule {name} not used "
                        "(only the last rule can have no matches)",
                    )
                catch_all = index
                continue
            duplicates = 0
            for m_index, match in enumerate(route.match):
                key = repr(match.model_dump(exclude={"name"}, exclude_defaults=True))
                if key in seen:
                    duplicates += 1
                    findings.warn(
                        f"spec.{field}[{index}].match[{m_index}]",
                        f"virtualService rule "
                        f"{name} match #{m_index} is not used (duplicate/overlapping "
                        f"match in rule #{seen[key]})",
                    )
                else:
                    seen[key] = index
            if duplicates == len(route.match):
                findings.warn(
                    f"spec.{field}[{index}]",
                    f"virtualService rule {name} not used (all matches used by prior rules)",
                )
