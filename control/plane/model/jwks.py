"""JSON Web Key Sets the control plane fetched for RequestAuthentication `jwksUri`s: data the
fetcher (an I/O shell, `control.plane.sources.jwks`) puts into the mesh state, so translation stays
pure and sees a fetch failure as data too."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JwksDocument:
    """The last outcome for one URI: `keys` is the JWKS JSON text of the last good fetch (kept
    while a refresh fails, as Istio keeps its cache), None when there never was one; `error`
    says why the latest attempt failed (None: it succeeded)."""

    uri: str
    keys: str | None = None
    error: str | None = None


DISCOVERY_SUFFIX = "/.well-known/openid-configuration"


def jwks_location(issuer: str | None, jwks_uri: str | None) -> str | None:
    """Where a JWT rule's keys come from, as the key of `MeshState.jwks`: its `jwksUri`, else
    (no inline `jwks` either) the issuer's OpenID discovery document, as Istio does."""
    if jwks_uri:
        return jwks_uri
    if issuer and issuer.startswith(("https://", "http://")):
        return issuer.rstrip("/") + DISCOVERY_SUFFIX
    return None
