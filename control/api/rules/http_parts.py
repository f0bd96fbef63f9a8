"""Checks of the parts an HTTP route is made of: destinations, headers, fault, retries, CORS."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Final

from control.api.duration import parse_millis
from control.api.errors import shown
from control.api.models.virtual_service import (
    CorsPolicy,
    Destination,
    HeaderOperations,
    Headers,
    HTTPDirectResponse,
    HTTPFaultInjection,
    HTTPRedirect,
    HTTPRetry,
    HTTPRewrite,
    HTTPRouteDestination,
    RouteDestination,
)
from control.api.rules import common
from control.api.rules.context import Findings

# Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies (Istio's supportedRetryOnPolicies).
RETRY_ON: Final = frozenset(
    {"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx",
     "refused-stream", "retriable-status-codes", "retriable-headers", "envoy-ratelimited",
     "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal",
     "resource-exhausted", "unavailable"}
)  # fmt: skip
HTTP_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"}
)  # fmt: skip
GRPC_STATUSES: Final = frozenset(
    {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
     "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
     "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
     "UNAUTHENTICATED"}
)  # fmt: skip
_KB: Final = 1024
_MB: Final = 1024 * _KB


def check_destination(findings: Findings, path: str, destination: Destination) -> None:
    host = destination.host or ""
    if host == "*":
        findings.error(f"{path}.host", "invalid destination host *")
    else:
        problem = common.wildcard_domain_error(host)
        if problem:
            findings.error(f"{path}.host", problem)
    if destination.subset is not None:
        check_subset_name(findings, f"{path}.subset", destination.subset)
    if destination.port is not None:
        common.check_port(findings, f"{path}.port.number", destination.port.number or 0)


def check_subset_name(findings: Findings, path: str, name: str) -> None:
    if not name:
        findings.error(path, "subset name cannot be empty")
    elif not common.is_dns1123_label(name):
        findings.error(path, f"subset name is invalid: {shown(name)}")


def check_weights(
    findings: Findings,
    path: str,
    routes: Sequence[HTTPRouteDestination | RouteDestination],
) -> None:
    """Destinations present, weights >= 0 and not all zero; a sum other than 100 only warns."""
    total = 0
    for index, route in enumerate(routes):
        where = f"{path}[{index}]"
        if route.destination is None:
            findings.error(f"{where}.destination", "destination is required")
        else:
            check_destination(findings, f"{where}.destination", route.destination)
        weight = route.weight or 0
        if weight < 0:
            findings.error(f"{where}.weight", f"weight {weight} < 0")
        total += max(weight, 0)
        if isinstance(route, HTTPRouteDestination) and route.headers is not None:
            check_headers(findings, f"{where}.headers", route.headers)
    if len(routes) > 1 and total == 0:
        findings.error(path, "total destination weight = 0")
    elif len(routes) > 1 and total != 100:
        findings.warn(path, f"destination weights sum to {total}, not 100; they are normalized")


def check_headers(findings: Findings, path: str, headers: Headers) -> None:
    if headers.request is not None:
        _check_operations(findings, f"{path}.request", headers.request, request=True)
    if headers.response is not None:
        _check_operations(findings, f"{path}.response", headers.response, request=False)


def _check_operations(
    findings: Findings, path: str, ops: HeaderOperations, *, request: bool
) -> None:
    for field, values in (("set", ops.set), ("add", ops.add)):
        for name, value in values.items():
            where = f"{path}.{field}[{name}]"
            if request:
                _check_settable_request_header(findings, where, name)
            else:
                _check_operation_header(findings, where, name)
            check_header_value(findings, where, value)
    for index, name in enumerate(ops.remove):
        _check_operation_header(findings, f"{path}.remove[{index}]", name)


def _is_authority(name: str) -> bool:
    return name.lower() in {":authority", "host"}


def _check_settable_request_header(findings: Findings, path: str, name: str) -> None:
    if _is_authority(name):
        return
    if name.startswith(":"):
        findings.error(path, f'invalid header {shown(name)}: header cannot have ":" prefix')
    else:  # a name Envoy would refuse (a blank, CR/LF) would get the whole route table NACKed
        common.check_header_name(findings, path, name)


def _check_operation_header(findings: Findings, path: str, name: str) -> None:
    if name.lower() == "host":
        findings.error(path, f"invalid header {shown(name)}: cannot set Host header")
    elif name.startswith(":"):
        findings.error(path, f'invalid header {shown(name)}: header cannot have ":" prefix')
    else:
        common.check_header_name(findings, path, name)


def check_header_value(findings: Findings, path: str, value: str) -> None:
    """No control characters; `%` opens an Envoy variable (`%NAME%`) or is escaped (`%%`)."""
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        findings.error(path, f"header value configuration {shown(value)} is invalid")
        return
    index = 0
    while index < len(value):
        if value[index] != "%":
            index += 1
        elif value.startswith("%%", index):
            index += 2
        else:
            end = value.find("%", index + 1)
            if end < 0:
                findings.error(
                    path,
                    f"header value configuration: unterminated variable in "
                    f"{shown(value)}; write %% for a literal %",
                )
                return
            index = end + 1


def authority_rewrites(rewrite: HTTPRewrite | None, headers: Headers | None) -> list[str]:
    """Every place one route sets the authority (Istio allows only one)."""
    found = [rewrite.authority] if rewrite is not None and rewrite.authority else []
    request = headers.request if headers is not None else None
    if request is not None:
        for values in (request.set, request.add):
            found += [value for name, value in values.items() if _is_authority(name)]
    return found


def _check_header_text(findings: Findings, path: str, value: str | None) -> None:
    """Rewritten paths and authorities become header values: Envoy refuses CR, LF and NUL in
    them, and would then refuse (NACK) the whole route table that carries them."""
    if value and any(char in value for char in "\r\n\x00"):
        findings.error(path, f"{shown(value)} contains a CR, LF or NUL character")


def check_redirect(findings: Findings, path: str, redirect: HTTPRedirect) -> None:
    _check_header_text(findings, f"{path}.uri", redirect.uri)
    _check_header_text(findings, f"{path}.authority", redirect.authority)
    if not (
        redirect.uri
        or redirect.authority
        or redirect.port
        or redirect.derive_port
        or redirect.scheme
        or redirect.prefix_rewrite
    ):
        findings.error(path, "redirect must specify URI, authority, scheme, or port")
    if redirect.prefix_rewrite is not None:
        _check_header_text(findings, f"{path}.prefixRewrite", redirect.prefix_rewrite)
        findings.warn(f"{path}.prefixRewrite", "mizzen does not apply prefixRewrite yet")
    if redirect.port is not None and redirect.derive_port is not None:
        findings.error(path, "redirect may only contain one of port or derivePort")
    code = redirect.redirect_code
    if code and not 300 <= code <= 399:
        findings.error(f"{path}.redirectCode", f"{code} is not a valid redirect code, must be 3xx")
    if redirect.scheme and redirect.scheme not in {"http", "https"}:
        findings.error(f"{path}.scheme", 'invalid redirect scheme, must be "http" or "https"')
    if redirect.port:
        common.check_port(findings, f"{path}.port", redirect.port)


def check_direct_response(findings: Findings, path: str, response: HTTPDirectResponse) -> None:
    status = response.status or 0
    if not 200 <= status <= 599:
        findings.error(f"{path}.status", f"HTTP status {status} is not in range 200-599")
    body = response.body
    if body is None:
        return
    if body.string is not None and body.bytes is not None:
        findings.error(f"{path}.body", "body may only contain one of string or bytes")
    size = len(body.string.encode()) if body.string is not None else 0
    if body.bytes is not None:
        try:
            size = len(base64.b64decode(body.bytes, validate=True))
        except (binascii.Error, ValueError):
            findings.error(f"{path}.body.bytes", "bytes must be base64")
    if size > _MB:
        findings.error(
            f"{path}.body",
            "large direct_responses may impact control plane performance, must be less than 1MB",
        )
    elif size > 100 * _KB:
        findings.warn(f"{path}.body", "large direct_responses may impact control plane performance")


def check_rewrite(findings: Findings, path: str, rewrite: HTTPRewrite) -> None:
    regex = rewrite.uri_regex_rewrite
    _check_header_text(findings, f"{path}.uri", rewrite.uri)
    _check_header_text(findings, f"{path}.authority", rewrite.authority)
    if regex is not None:
        _check_header_text(findings, f"{path}.uriRegexRewrite.rewrite", regex.rewrite)
    if rewrite.uri and regex is not None:
        findings.error(path, "rewrite may only contain one of URI or UriRegexRewrite")
    if not rewrite.uri and regex is None and not rewrite.authority:
        findings.error(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or "
            "authority. Only one of URI or UriRegexRewrite may be specified",
        )
    if regex is not None:
        if not regex.match or not regex.rewrite:
            findings.error(
                f"{path}.uriRegexRewrite",
                "UriRegexRewrite requires both Rewrite and Match fields to be specified",
            )
        if regex.match:
            common.check_regex(findings, f"{path}.uriRegexRewrite.match", regex.match)


def check_retries(findings: Findings, path: str, retries: HTTPRetry) -> None:
    attempts = retries.attempts or 0
    if attempts < 0:
        findings.error(f"{path}.attempts", "attempts cannot be negative")
    if attempts == 0 and (
        retries.per_try_timeout is not None
        or retries.retry_on
        or retries.retry_remote_localities is not None
        or retries.backoff is not None
    ):
        findings.error(path, "http retry policy configured when attempts are set to 0 (disabled)")
    if retries.retry_on:
        for policy in retries.retry_on.split(","):
            if policy in RETRY_ON or (
                policy.isascii()
                and policy.isdigit()
                and len(policy) == 3
                and 100 <= int(policy) <= 599
            ):
                continue
            findings.error(f"{path}.retryOn", f"{shown(policy)} is not a valid retryOn policy")


def check_fault(findings: Findings, path: str, fault: HTTPFaultInjection) -> None:
    if fault.abort is None and fault.delay is None:
        findings.error(path, "HTTP fault injection must have an abort and/or a delay")
    if (abort := fault.abort) is not None:
        where = f"{path}.abort"
        common.check_percentage(findings, f"{where}.percentage", abort.percentage)
        kinds = [
            k
            for k in ("http_status", "grpc_status", "http2_error")
            if getattr(abort, k) is not None
        ]
        if len(kinds) > 1:
            findings.error(
                where, "abort may only contain one of httpStatus, grpcStatus or http2Error"
            )
        if abort.http_status is not None and not 200 <= abort.http_status <= 599:
            findings.error(
                f"{where}.httpStatus", f"HTTP status {abort.http_status} is not in range 200-599"
            )
        if abort.grpc_status is not None and abort.grpc_status not in GRPC_STATUSES:
            findings.error(
                f"{where}.grpcStatus",
                f"gRPC status {shown(abort.grpc_status)} is not supported; for example 'NOT_FOUND'",
            )
        if abort.http2_error is not None:
            findings.error(f"{where}.http2Error", "HTTP/2 abort fault injection not supported yet")
        if not kinds:
            findings.warn(where, "abort configured, but error type not set")
    if (delay := fault.delay) is not None:
        where = f"{path}.delay"
        common.check_percentage(findings, f"{where}.percentage", delay.percentage)
        if delay.percent is not None:
            if not 0 <= delay.percent <= 100:
                findings.error(
                    f"{where}.percent", f"percentage {delay.percent} is not in range 0..100"
                )
            findings.warn(f"{where}.percent", 'deprecated "percent", use "percentage" instead')
        if delay.exponential_delay is not None:
            findings.error(f"{where}.exponentialDelay", "exponentialDelay not supported yet")
        elif delay.fixed_delay is None:  # Istio accepts it; it delays nothing
            findings.warn(where, "delay without fixedDelay injects no delay")


def check_cors(findings: Findings, path: str, cors: CorsPolicy) -> None:
    for index, origin in enumerate(cors.allow_origins):
        where = f"{path}.allowOrigins[{index}]"
        value = origin.exact or origin.prefix or origin.regex or ""
        if not value:
            findings.error(where, "'' is not a valid match type for CORS allow origins")
        else:
            common.check_string_match(findings, where, origin)
    if cors.allow_origin:
        findings.warn(f"{path}.allowOrigin", 'deprecated "allowOrigin", use "allowOrigins"')
    for index, method in enumerate(cors.allow_methods):
        if method not in HTTP_METHODS:
            findings.error(
                f"{path}.allowMethods[{index}]", f"{shown(method)} is not a supported HTTP method"
            )
    for field, names in (
        ("allowHeaders", cors.allow_headers),
        ("exposeHeaders", cors.expose_headers),
    ):
        for index, name in enumerate(names):
            if name != "*":
                common.check_header_name(findings, f"{path}.{field}[{index}]", name)
    if cors.max_age is not None and parse_millis(cors.max_age) % 1000:
        findings.error(f"{path}.maxAge", "max_age duration is accurate only to seconds precision")
