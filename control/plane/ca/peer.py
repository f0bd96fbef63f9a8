"""Who is on the other end of a mutual-TLS gRPC call: the SPIFFE id of the client certificate,
for services on a secure port that requires client certificates (ADS over mTLS). gRPC puts a
verified certificate's single `spiffe://` URI SAN in the auth context as `peer_spiffe_id`."""

from __future__ import annotations

from typing import Any

from control.identity.spiffe import IdentityError, SpiffeId


def peer_spiffe_id(context: Any) -> SpiffeId | None:
    """The caller's verified SPIFFE id; None without a (single, well-formed) one."""
    values = context.auth_context().get("peer_spiffe_id") or []
    if len(values) != 1:
        return None
    raw = values[0]
    try:
        return SpiffeId.parse(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (IdentityError, UnicodeDecodeError):
        return None
