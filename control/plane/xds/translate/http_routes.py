"""VirtualService `http` rules -> Envoy routes, for one proxy and one port.

Each HTTPRoute gives one Envoy route per match that applies to this proxy (its port, source
labels and namespace), in order; a rule without matches matches everything.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from control.api.models.base import StringMatch
from control.api.models.virtual_service import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
)
from control.plane.model.endpoints import labels_match
from control.plane.xds.translate.policy import duration
from control.plane.xds.translate.proxy import Proxy

# Resolves a destination (in the VirtualService's namespace) for this port -> (cluster, hashing).
ClusterOf = Callable[[Destination], tuple[str, list[dict[str, Any]]]]

FAULT_FILTER = "envoy.filters.http.fault"
_FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
_PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)
DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}
_GRPC_CODES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]


def default_retry_policy() -> dict[str, Any]:
    """Istio's retries when a route sets none: 2 attempts on connection-level failures."""
    return _retry_policy(DEFAULT_RETRY_ON, 2, None)


def _retry_policy(retry_on: str, attempts: int, per_try_timeout: str | None) -> dict[str, Any]:
    conditions, codes = [], []
    for item in (part.strip() for part in retry_on.split(",")):
        if item.isdigit():
            codes.append(int(item))
        elif item:
            conditions.append(item)
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy: dict[str, Any] = {
        "retry_on": ",".join(conditions),
        "num_retries": attempts,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": _PREVIOUS_HOSTS},
            }
        ],
        "host_selection_retry_max_attempts": 5,
        "retriable_status_codes": codes or [503],
    }
    if per_try_timeout:
        policy["per_try_timeout"] = duration(per_try_timeout)
    return policy


def per_million(value: float | None) -> dict[str, Any]:
    """An Istio percentage (unset: 100) as Envoy's fraction per million (value x 10^4)."""
    percent = 100.0 if value is None else value
    return {"numerator": round(percent * 10_000), "denominator": "MILLION"}


def applies(match: HTTPMatchRequest, proxy: Proxy, port: int) -> bool:
    """Whether a match can ever hold for requests this proxy sends to `port`."""
    if match.port is not None and match.port != port:
        return False
    if match.source_labels and not labels_match(match.source_labels, proxy.labels):
        return False
    if match.source_namespace is not None and match.source_namespace != proxy.namespace:
        return False
    return not match.gateways or "mesh" in match.gateways


def _string_match(match: StringMatch, *, ignore_case: bool = False) -> dict[str, Any]:
    out: dict[str, Any]
    if match.exact is not None:
        out = {"exact": match.exact}
    elif match.prefix is not None:
        out = {"prefix": match.prefix}
    elif match.regex is not None:
        out = {"safe_regex": {"regex": match.regex}}
    else:
        return {}
    if ignore_case and match.regex is None:
        out["ignore_case"] = True
    return out


def _header_matcher(name: str, match: StringMatch, invert: bool = False) -> dict[str, Any]:
    matcher: dict[str, Any] = {"name": name}
    string_match = _string_match(match)
    if string_match:
        matcher["string_match"] = string_match
    else:
        matcher["present_match"] = True
    if invert:
        matcher["invert_match"] = True
    return matcher


def route_match(match: HTTPMatchRequest | None) -> dict[str, Any]:
    if match is None:
        return {"prefix": "/"}
    out: dict[str, Any]
    uri = match.uri
    if uri is not None and uri.exact is not None:
        out = {"path": uri.exact}
    elif uri is not None and uri.prefix is not None:
        out = {"prefix": uri.prefix}
    elif uri is not None and uri.regex is not None:
        out = {"safe_regex": {"regex": uri.regex}}
    else:
        out = {"prefix": "/"}
    if match.ignore_uri_case:
        out["case_sensitive"] = False
    headers = [_header_matcher(k, v) for k, v in sorted(match.headers.items())]
    for pseudo, value in ((":method", match.method), (":scheme", match.scheme),
                          (":authority", match.authority)):  # fmt: skip
        if value is not None:
            headers.append(_header_matcher(pseudo, value))
    headers += [
        _header_matcher(k, v, invert=True) for k, v in sorted(match.without_headers.items())
    ]
    if headers:
        out["headers"] = headers
    params = []
    for name, value in sorted(match.query_params.items()):
        string_match = _string_match(value)
        params.append(
            {"name": name, "string_match": string_match} if string_match
            else {"name": name, "present_match": True}
        )  # fmt: skip
    if params:
        out["query_parameters"] = params
    return out


def _header_ops(ops: HeaderOperations | None, direction: str) -> dict[str, Any]:
    if ops is None:
        return {}
    to_add = [
        {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        for k, v in sorted(ops.set.items())
    ] + [
        {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
        for k, v in sorted(ops.add.items())
    ]
    out: dict[str, Any] = {}
    if to_add:
        out[f"{direction}_headers_to_add"] = to_add
    if ops.remove:
        out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def header_fields(headers: Headers | None) -> dict[str, Any]:
    if headers is None:
        return {}
    return {**_header_ops(headers.request, "request"), **_header_ops(headers.response, "response")}


def _fault(fault: HTTPFaultInjection) -> dict[str, Any] | None:
    config: dict[str, Any] = {"@type": _FAULT_TYPE}
    delay = fault.delay
    if delay is not None and delay.fixed_delay:
        value = delay.percentage.value if delay.percentage else None
        if value is None and delay.percent is not None:
            value = float(delay.percent)
        config["delay"] = {
            "fixed_delay": duration(delay.fixed_delay),
            "percentage": per_million(value),
        }
    abort = fault.abort
    if abort is not None and (abort.http_status or abort.grpc_status):
        value = abort.percentage.value if abort.percentage else None
        out: dict[str, Any] = {"percentage": per_million(value)}
        if abort.http_status:
            out["http_status"] = abort.http_status
        elif abort.grpc_status in _GRPC_CODES:
            out["grpc_status"] = _GRPC_CODES.index(abort.grpc_status)
        else:
            return None if "delay" not in config else config
        config["abort"] = out
    return config if len(config) > 1 else None


def _retries(retries: HTTPRetry | None) -> dict[str, Any] | None:
    if retries is None:
        return default_retry_policy()
    if not retries.attempts:
        return None  # attempts 0: retries off
    retry_on = retries.retry_on or DEFAULT_RETRY_ON
    return _retry_policy(retry_on, retries.attempts, retries.per_try_timeout)


def _rewrite(rule: HTTPRoute, match: HTTPMatchRequest | None) -> dict[str, Any]:
    rewrite = rule.rewrite
    if rewrite is None:
        return {}
    out: dict[str, Any] = {}
    if rewrite.uri_regex_rewrite is not None and rewrite.uri_regex_rewrite.match is not None:
        out["regex_rewrite"] = {
            "pattern": {"regex": rewrite.uri_regex_rewrite.match},
            "substitution": rewrite.uri_regex_rewrite.rewrite or "",
        }
    elif rewrite.uri is not None:
        if match is not None and match.uri is not None and match.uri.regex is not None:
            out["regex_rewrite"] = {"pattern": {"regex": "^.*$"}, "substitution": rewrite.uri}
        else:
            out["prefix_rewrite"] = rewrite.uri
    if rewrite.authority:
        out["host_rewrite_literal"] = rewrite.authority
    return out


def _redirect(rule: HTTPRoute) -> dict[str, Any]:
    redirect = rule.redirect
    assert redirect is not None
    out: dict[str, Any] = {}
    if redirect.uri:
        out["path_redirect"] = redirect.uri
    if redirect.authority:
        out["host_redirect"] = redirect.authority
    if redirect.port:
        out["port_redirect"] = redirect.port
    if redirect.scheme:
        out["scheme_redirect"] = redirect.scheme
    code = redirect.redirect_code or 301
    out["response_code"] = _REDIRECT_CODES.get(code, "MOVED_PERMANENTLY")
    return out


def _direct_response(rule: HTTPRoute) -> dict[str, Any]:
    response = rule.direct_response
    assert response is not None
    out: dict[str, Any] = {"status": response.status or 200}
    if response.body is not None and response.body.string is not None:
        out["body"] = {"inline_string": response.body.string}
    elif response.body is not None and response.body.bytes is not None:
        raw = base64.b64decode(response.body.bytes)
        out["body"] = {"inline_bytes": base64.b64encode(raw).decode()}
    return out


def _mirrors(rule: HTTPRoute, cluster_of: ClusterOf) -> list[dict[str, Any]]:
    wanted: list[tuple[Destination, float | None]] = []
    if rule.mirror is not None:
        value = rule.mirror_percentage.value if rule.mirror_percentage else None
        if value is None and rule.mirror_percent is not None:
            value = float(rule.mirror_percent)
        wanted.append((rule.mirror, value))
    for mirror in rule.mirrors:
        if mirror.destination is not None:
            wanted.append(
                (mirror.destination, mirror.percentage.value if mirror.percentage else None)
            )
    policies = []
    for destination, value in wanted:
        policy: dict[str, Any] = {"cluster": cluster_of(destination)[0]}
        if value is not None and value < 100:
            policy["runtime_fraction"] = {"default_value": per_million(value)}
        policies.append(policy)
    return policies


def _action(
    rule: HTTPRoute, match: HTTPMatchRequest | None, cluster_of: ClusterOf
) -> dict[str, Any]:
    """The `route` action, plus route-level header fields for a single destination."""
    destinations = [d for d in rule.route if d.destination is not None and d.weight != 0]
    action: dict[str, Any] = {}
    route_headers: dict[str, Any] = {}
    if len(destinations) == 1:
        assert destinations[0].destination is not None
        cluster, hashing = cluster_of(destinations[0].destination)
        action["cluster"] = cluster
        if hashing:
            action["hash_policy"] = hashing
        route_headers = header_fields(destinations[0].headers)
    else:
        weighted = []
        for item in destinations:
            assert item.destination is not None
            entry: dict[str, Any] = {
                "name": cluster_of(item.destination)[0],
                "weight": item.weight or 0,
            }
            entry.update(header_fields(item.headers))
            weighted.append(entry)
        action["weighted_clusters"] = {"clusters": weighted}
    action["timeout"] = duration(rule.timeout) if rule.timeout else "0s"
    retry = _retries(rule.retries)
    if retry is not None:
        action["retry_policy"] = retry
    action.update(_rewrite(rule, match))
    mirrors = _mirrors(rule, cluster_of)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    return {"route": action, **route_headers}


def envoy_routes(
    rules: tuple[HTTPRoute, ...], proxy: Proxy, port: int, cluster_of: ClusterOf, prefix: str
) -> list[dict[str, Any]]:
    """The Envoy routes of one VirtualService's http rules for this proxy and port."""
    routes: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        if rule.delegate is not None:
            continue  # delegation: a later issue
        matches: list[HTTPMatchRequest | None] = [m for m in rule.match if applies(m, proxy, port)]
        if rule.match and not matches:
            continue
        if not rule.match:
            matches = [None]
        for match in matches:
            route: dict[str, Any] = {
                "name": rule.name or f"{prefix}.{index}",
                "match": route_match(match),
            }
            if rule.redirect is not None:
                route["redirect"] = _redirect(rule)
            elif rule.direct_response is not None:
                route["direct_response"] = _direct_response(rule)
            elif any(d.destination is not None and d.weight != 0 for d in rule.route):
                route.update(_action(rule, match, cluster_of))
            else:
                continue
            extra = header_fields(rule.headers)
            for key, value in extra.items():
                route[key] = [*route.get(key, []), *value]
            if rule.fault is not None and "route" in route:
                fault = _fault(rule.fault)
                if fault is not None:
                    route["typed_per_filter_config"] = {FAULT_FILTER: fault}
            routes.append(route)
    return routes
