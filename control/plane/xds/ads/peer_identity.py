"""On the secure xDS port a proxy is who its client certificate says, not who its node claims.

Istio's istiod checks each ADS connection the same way: the node's namespace (and, when the node
names one, its service account) must be those of a SPIFFE id of the verified client
certificate; otherwise any workload holding a mesh certificate could read another namespace's
configuration (its listeners, routes, and the secrets' names) by sending another node id. The
namespace is checked in every place the node states it (the id's `<pod>.<namespace>` and the
metadata's `NAMESPACE`), since either may decide what the proxy is served.

    check = PeerIdentityCheck()
    reason = check(node_id, metadata, context)   # None: allowed; else why not (for the log)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from control.config.node_metadata import META_NAMESPACE, META_SERVICE_ACCOUNT
from control.identity.spiffe import SpiffeId, shorten
from control.plane.ca.peer import peer_spiffe_id


def _id_namespace(node_id: str) -> str | None:
    """`sidecar~<ip>~<pod>.<namespace>~<domain>`'s namespace; None when the id has another form
    (the stream refuses it as malformed anyway)."""
    parts = node_id.split("~")
    if len(parts) != 4:
        return None
    _, dot, namespace = parts[2].rpartition(".")
    return namespace if dot else None


def identity_mismatch(
    node_id: str, metadata: Mapping[str, Any], identity: SpiffeId | None
) -> str | None:
    """Why a node with this id and metadata may not be served to `identity` (the certificate's
    SPIFFE id), or None when it may. Pure: the messages escape and truncate what the node
    sent."""
    if identity is None:
        return "the client certificate carries no SPIFFE id"
    claims: list[tuple[str, object]] = [("node id", _id_namespace(node_id))]
    if META_NAMESPACE in metadata:
        claims.append(("metadata NAMESPACE", metadata[META_NAMESPACE]))
    for where, namespace in claims:
        if namespace != identity.namespace:
            shown = shorten(str(namespace), 64)
            return f"{where} claims namespace {shown}, the certificate is {identity.uri}"
    account = metadata.get(META_SERVICE_ACCOUNT)
    if account not in (None, "") and account != identity.service_account:
        shown = shorten(str(account), 64)
        return f"metadata SERVICE_ACCOUNT claims {shown}, the certificate is {identity.uri}"
    return None


class PeerIdentityCheck:
    """The ADS stream's check on a port that requires client certificates."""

    def __call__(self, node_id: str, metadata: Mapping[str, Any], context: Any) -> str | None:
        return identity_mismatch(node_id, metadata, peer_spiffe_id(context))
