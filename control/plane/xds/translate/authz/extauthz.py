"""CUSTOM AuthorizationPolicies -> Envoy's ext_authz, as Istio builds it: an RBAC filter in
shadow mode marks the requests a CUSTOM rule matches (dynamic metadata), and ext_authz, enabled
only by that mark, asks the MeshConfig extension provider (`envoyExtAuthzHttp` or
`envoyExtAuthzGrpc`; `failOpen` false by default). A provider that is missing or whose service
is unknown denies what its policies match (Istio's "bad CUSTOM action" rules): never fail open
by misconfiguration. One provider per workload, as Istio's default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from control.api.duration import parse_millis
from control.config.mesh_extensions import ExtensionProvider
from control.plane.xds.translate.authz.matchers import Json

_T: Final = "type.googleapis.com/"
HTTP_EXT_AUTHZ: Final = "envoy.filters.http.ext_authz"
NETWORK_EXT_AUTHZ: Final = "envoy.filters.network.ext_authz"
MATCH_PREFIX: Final = "istio-ext-authz"
SHADOW_STAT_PREFIX: Final = "istio_ext_authz_"
BAD_SUFFIX: Final = "-deny-due-to-bad-CUSTOM-action"


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """An extension provider with its service found in the registry (`cluster` is the
    outbound cluster), or `error` saying why it cannot be used."""

    name: str
    provider: ExtensionProvider | None = None
    hostname: str = ""
    cluster: str = ""
    error: str | None = None


def _seconds(text: str | None, default: str = "600s") -> str:
    if not text:
        return default
    millis = parse_millis(text)
    return f"{millis // 1000}.{millis % 1000:03d}s"


def _headers(names: tuple[str, ...]) -> Json:
    return {"patterns": [{"exact": name, "ignore_case": True} for name in names]}


def _enabled_by(rbac_filter: str) -> Json:
    return {
        "filter": rbac_filter,
        "path": [{"key": SHADOW_STAT_PREFIX + "shadow_effective_policy_id"}],
        "value": {"string_match": {"prefix": MATCH_PREFIX}},
    }


def _grpc_service(resolved: ResolvedProvider, timeout: str | None) -> Json:
    return {
        "envoy_grpc": {
            "cluster_name": resolved.cluster,
            "authority": resolved.cluster.replace("|", "_."),
        },
        "timeout": _seconds(timeout),
    }


def http_ext_authz(resolved: ResolvedProvider) -> Json:
    provider = resolved.provider
    assert provider is not None
    config: Json = {
        "@type": _T + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3",
        "filter_enabled_metadata": _enabled_by("envoy.filters.http.rbac"),
    }
    if provider.envoy_ext_authz_http is not None:
        http = provider.envoy_ext_authz_http
        service: Json = {
            "server_uri": {
                "uri": f"http://{resolved.hostname}",
                "cluster": resolved.cluster,
                "timeout": _seconds(http.timeout),
            }
        }
        if http.path_prefix:
            service["path_prefix"] = http.path_prefix
        if http.include_request_headers_in_check:
            service["authorization_request"] = {
                "allowed_headers": _headers(http.include_request_headers_in_check)
            }
        response: Json = {}
        if http.headers_to_upstream_on_allow:
            response["allowed_upstream_headers"] = _headers(http.headers_to_upstream_on_allow)
        if http.headers_to_downstream_on_deny:
            response["allowed_client_headers"] = _headers(http.headers_to_downstream_on_deny)
        if response:
            service["authorization_response"] = response
        config["http_service"] = service
        fail_open, status = http.fail_open, http.status_on_error
    else:
        grpc = provider.envoy_ext_authz_grpc
        assert grpc is not None
        config["grpc_service"] = _grpc_service(resolved, grpc.timeout)
        fail_open, status = grpc.fail_open, grpc.status_on_error
    config["failure_mode_allow"] = fail_open
    if status is not None:
        config["status_on_error"] = {"code": status}
    return {"name": HTTP_EXT_AUTHZ, "typed_config": config}


def network_ext_authz(resolved: ResolvedProvider) -> Json | None:
    """gRPC providers only (an HTTP provider cannot check TCP; Istio skips it there)."""
    provider = resolved.provider
    if provider is None or provider.envoy_ext_authz_grpc is None:
        return None
    grpc = provider.envoy_ext_authz_grpc
    return {
        "name": NETWORK_EXT_AUTHZ,
        "typed_config": {
            "@type": _T + "envoy.extensions.filters.network.ext_authz.v3.ExtAuthz",
            "stat_prefix": "tcp.",
            "transport_api_version": "V3",
            "failure_mode_allow": grpc.fail_open,
            "grpc_service": _grpc_service(resolved, grpc.timeout),
            "filter_enabled_metadata": _enabled_by("envoy.filters.network.rbac"),
        },
    }
