"""Which Kubernetes kinds are the mesh's: Istio's API groups, their kinds and served versions."""

from __future__ import annotations

from typing import Final

NETWORKING: Final = "networking.istio.io"
SECURITY: Final = "security.istio.io"
MESH_GROUPS: Final = frozenset({NETWORKING, SECURITY})

NETWORKING_KINDS: Final = ("VirtualService", "DestinationRule", "ServiceEntry", "Sidecar")
# Istio kinds mizzen does not serve: passed over with a note, like non-mesh kinds, rather than
# refused (their own groups, telemetry.istio.io and extensions.istio.io, are not mesh groups).
UNSERVED_KINDS: Final = frozenset(
    {"EnvoyFilter", "WorkloadEntry", "WorkloadGroup", "ProxyConfig", "Telemetry", "WasmPlugin"}
)
SECURITY_KINDS: Final = ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication")

# Every version is the same schema; the first is the storage version.
VERSIONS: Final[dict[str, tuple[str, ...]]] = {
    NETWORKING: ("v1", "v1beta1", "v1alpha3"),
    SECURITY: ("v1", "v1beta1"),
}
# The kinds the control plane reads (and the kube source watches).
KINDS: Final[dict[str, tuple[str, ...]]] = {
    NETWORKING: NETWORKING_KINDS,
    SECURITY: SECURITY_KINDS,
}
# The kinds `validate_resource` judges (and manifests/crds defines): the served ones, and Istio's
# Gateway, validated as Istio does although mizzen runs no gateway proxies.
VALIDATED_KINDS: Final[dict[str, tuple[str, ...]]] = {
    NETWORKING: (*NETWORKING_KINDS, "Gateway"),
    SECURITY: SECURITY_KINDS,
}


def split_api_version(api_version: str) -> tuple[str, str]:
    """`group/version` -> (group, version); the core group (`v1`) has an empty group."""
    group, _, version = api_version.rpartition("/")
    return group, version


def is_mesh_group(api_version: object, kind: object = None) -> bool:
    """True when the apiVersion names one of Istio's groups (whatever the version), i.e. the
    object is ours to judge; False for the kinds mizzen does not serve (UNSERVED_KINDS)."""
    if kind in UNSERVED_KINDS:
        return False
    return isinstance(api_version, str) and split_api_version(api_version)[0] in MESH_GROUPS


def is_mesh_kind(api_version: object, kind: object) -> bool:
    """True for a kind this mesh models, in a served version of its group."""
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    group, version = split_api_version(api_version)
    return kind in VALIDATED_KINDS.get(group, ()) and version in VERSIONS.get(group, ())
