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


def tls_settings(spec: Any) -> list[tuple[str, Any]]:
    """(field path, ClientTLSSettings) of a DestinationRule: top, port, subset levels."""
    found: list[tuple[str, Any]] = []

    def policy(path: str, traffic: Any) -> None:
        if traffic is None:
            return
        if traffic.tls is not None:
            found.append((f"{path}.tls", traffic.tls))
        for index, port in enumerate(traffic.port_level_settings):
            if port.tls is not None:
                found.append((f"{path}.portLevelSettings[{index}].tls", port.tls))

    policy("spec.trafficPolicy", spec.traffic_policy)
    for index, subset in enumerate(spec.subsets):
        policy(f"spec.subsets[{index}].trafficPolicy", subset.traffic_policy)
    return found


def _credential_name(path: str, reads_secrets: bool) -> str | None:
    """Why a `credentialName` is refused (its connections fail) when validation does not say
    it already, or None."""
    if not reads_secrets:
        return (
            f"{path}.credentialName: certificates from a Secret are served only with "
            "`mizzen control --kube` (this source reads no Secrets): connections under this "
            "setting fail instead of going out without it; mount the files and use "
            "caCertificates/clientCertificate/privateKey"
        )
    # Without a workloadSelector: refused too (translation), and validation warns of it.
    return None


def warnings(resource: MeshResource[Any], reads_secrets: bool = False) -> list[str]:
    """Settings applied in a way the user must know of (the resource still applies).
    `reads_secrets`: the source serves `credentialName` from Secrets (`--kube`)."""
    if resource.kind != "DestinationRule":
        return []
    out = []
    for path, tls in tls_settings(resource.spec):
        if tls.credential_name and tls.mode in ("SIMPLE", "MUTUAL"):
            refusal = _credential_name(path, reads_secrets)
            if refusal is not None:
                out.append(refusal)
        elif tls.mode == "MUTUAL" and not (tls.client_certificate and tls.private_key):
            out.append(
                f"{path}: MUTUAL needs clientCertificate and privateKey: connections under "
                "this setting fail"
            )
    return out
