"""Valid Istio resources that mizzen does not enforce, refused with a clear message when the
state is built (listed as config problems), so nobody believes a policy protects them when it
does not."""

from __future__ import annotations

from typing import Any

from control.api.registry import MeshResource

_TARGETED = ("AuthorizationPolicy", "RequestAuthentication", "PeerAuthentication")


def unsupported(resource: MeshResource[Any]) -> str | None:
    """Why `resource` cannot be applied, or None."""
    spec = resource.spec
    targeted = getattr(spec, "target_ref", None) is not None or bool(
        getattr(spec, "target_refs", None)
    )
    if resource.kind in _TARGETED and targeted:
        return (
            "spec.targetRef/targetRefs: not supported: they bind a policy to gateways and "
            "waypoints, which mizzen does not run; use spec.selector for sidecars (the policy is "
            "not applied)"
        )
    return None
