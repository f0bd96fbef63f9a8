"""VirtualService (networking.istio.io): how requests to a host are routed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.api.duration import Duration
from control.api.models.base import (
    ApiModel,
    Bool,
    Int,
    Labels,
    Percent,
    PortSelector,
    Str,
    StringMatch,
    UInt,
)


class Destination(ApiModel):
    """A service (and optionally a subset and port) requests are forwarded to."""

    host: Str | None = None
    subset: Str | None = None
    port: PortSelector | None = None


class HeaderOperations(ApiModel):
    set: dict[Str, Str] = Field(default_factory=dict)
    add: dict[Str, Str] = Field(default_factory=dict)
    remove: tuple[Str, ...] = ()


class Headers(ApiModel):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPMatchRequest(ApiModel):
    """All conditions of one match must hold (AND); the matches of a route are ORed."""

    name: Str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: dict[Str, StringMatch] = Field(default_factory=dict)
    port: UInt | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: tuple[Str, ...] = ()
    query_params: dict[Str, StringMatch] = Field(default_factory=dict)
    ignore_uri_case: Bool | None = None
    without_headers: dict[Str, StringMatch] = Field(default_factory=dict)
    source_namespace: Str | None = None
    stat_prefix: Str | None = None


class HTTPRouteDestination(ApiModel):
    destination: Destination | None = None
    weight: Int | None = None
    headers: Headers | None = None


class RouteDestination(ApiModel):
    destination: Destination | None = None
    weight: Int | None = None


class HTTPRedirect(ApiModel):
    uri: Str | None = None
    authority: Str | None = None
    port: UInt | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = None
    scheme: Str | None = None
    redirect_code: UInt | None = None
    prefix_rewrite: Str | None = None
    """Replaces the matched prefix of the path in the redirect (Istio 1.31); not applied yet."""


class HTTPBody(ApiModel):
    string: Str | None = None
    bytes: Str | None = None
    """Base64 of the body, as protobuf JSON writes bytes."""


class HTTPDirectResponse(ApiModel):
    status: UInt | None = None
    body: HTTPBody | None = None


class Delegate(ApiModel):
    """Hands the route to another VirtualService (which has no hosts)."""

    name: Str | None = None
    namespace: Str | None = None


class RegexRewrite(ApiModel):
    match: Str | None = None
    rewrite: Str | None = None


class HTTPRewrite(ApiModel):
    uri: Str | None = None
    authority: Str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(ApiModel):
    attempts: Int | None = None
    per_try_timeout: Duration | None = None
    retry_on: Str | None = None
    retry_remote_localities: Bool | None = None
    retry_ignore_previous_hosts: Bool | None = None
    backoff: Duration | None = None


class FaultDelay(ApiModel):
    fixed_delay: Duration | None = None
    exponential_delay: Duration | None = None
    percentage: Percent | None = None
    percent: Int | None = None
    """Deprecated integer form of `percentage`."""


class FaultAbort(ApiModel):
    http_status: Int | None = None
    grpc_status: Str | None = None
    http2_error: Str | None = None
    percentage: Percent | None = None


class HTTPFaultInjection(ApiModel):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


class HTTPMirrorPolicy(ApiModel):
    destination: Destination | None = None
    percentage: Percent | None = None


class CorsPolicy(ApiModel):
    allow_origins: tuple[StringMatch, ...] = ()
    allow_origin: tuple[Str, ...] = ()
    """Deprecated: exact origins; use allowOrigins."""
    allow_methods: tuple[Str, ...] = ()
    allow_headers: tuple[Str, ...] = ()
    expose_headers: tuple[Str, ...] = ()
    max_age: Duration | None = None
    allow_credentials: Bool | None = None
    unmatched_preflights: Literal["UNSPECIFIED", "FORWARD", "IGNORE"] | None = None


class HTTPRoute(ApiModel):
    """One HTTP rule: matches, then route, redirect, direct response or delegate."""

    name: Str | None = None
    match: tuple[HTTPMatchRequest, ...] = ()
    route: tuple[HTTPRouteDestination, ...] = ()
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: Duration | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] = ()
    mirror_percentage: Percent | None = None
    mirror_percent: UInt | None = None
    """Deprecated integer form of `mirrorPercentage`."""
    cors_policy: CorsPolicy | None = None
    headers: Headers | None = None


class TLSMatchAttributes(ApiModel):
    sni_hosts: tuple[Str, ...] = ()
    destination_subnets: tuple[Str, ...] = ()
    port: UInt | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: tuple[Str, ...] = ()
    source_namespace: Str | None = None


class TLSRoute(ApiModel):
    match: tuple[TLSMatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


class L4MatchAttributes(ApiModel):
    destination_subnets: tuple[Str, ...] = ()
    port: UInt | None = None
    source_subnet: Str | None = None
    source_labels: Labels = Field(default_factory=dict)
    gateways: tuple[Str, ...] = ()
    source_namespace: Str | None = None


class TCPRoute(ApiModel):
    match: tuple[L4MatchAttributes, ...] = ()
    route: tuple[RouteDestination, ...] = ()


class VirtualService(ApiModel):
    """The spec of a VirtualService."""

    hosts: tuple[Str, ...] = ()
    gateways: tuple[Str, ...] = ()
    http: tuple[HTTPRoute, ...] = ()
    tls: tuple[TLSRoute, ...] = ()
    tcp: tuple[TCPRoute, ...] = ()
    export_to: tuple[Str, ...] = ()
