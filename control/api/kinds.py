"""Which Kubernetes kinds are the mesh's: Istio's API groups, their kinds and served versions."""

from __future__ import annotations

from typing import Final

NETWORKING: Final = "networking.istio.io"
SECURITY: Final = "security.istio.io"
MESH_GROUPS: Final = frozenset({NETWORKING, SECURITY})

NETWORKING_KINDS: Final = ("VirtualService", "DestinationRule", "ServiceEntry", "Sidecar")
SECURITY_KINDS: Final = ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication")

# Every version is the same schema; the first is the storage version.
VERSIONS: Final[dict[str, tuple[str, ...]]] = {
    NETWORKING: ("v1", "v1beta1", "v1alpha3"),
    SECURITY: ("v1", "v1beta1"),
}
KINDS: Final[dict[str, tuple[str, ...]]] = {
    NETWORKING: NETWORKING_KINDS,
    SECURITY: SECURITY_KINDS,
}


def split_api_version(api_version: str) -> tuple[str, str]:
    """`group/version` -> (group, version); the core group (`v1`) has an empty group."""
    group, _, version = api_version.rpartition("/")
    return group, version


def is_mesh_group(api_version: object) -> bool:
    """True when the apiVersion names one of Istio's groups (whatever the kind or version)."""
    return isinstance(api_version, str) and split_api_version(api_version)[0] in MESH_GROUPS


def is_mesh_kind(api_version: object, kind: object) -> bool:
    """True for a kind this mesh models, in a served version of its group."""
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    group, version = split_api_version(api_version)
    return kind in KINDS.get(group, ()) and version in VERSIONS.get(group, ())
