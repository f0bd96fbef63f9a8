"""Who may read the debug port. `/debug/*` returns every proxy's config (header values
included) and translates one for any node id asked for, so, as in istiod, only `/ready` (probes)
and `/metrics` (scraping) are open to all; everything else answers only a loopback client
(`kubectl port-forward` and `kubectl exec` arrive from loopback) or one that presents the
operator's bearer token (`--debug-token-file`). Anything else gets 403 naming the way in."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/ready", "/metrics"})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, and IPv4 loopback mapped into IPv6 (a dual-stack socket's view)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            return token.strip() if scheme.lower() == b"bearer" else None
    return None


class DebugAccess:
    """ASGI middleware: lets through open paths, loopback clients and holders of `token`."""

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def allowed(self, scope: Scope) -> bool:
        if scope["path"] in OPEN_PATHS:
            return True
        client = scope.get("client")
        if client is not None and is_loopback(client[0]):
            return True
        offered = _bearer(scope)
        return (
            self.token is not None
            and offered is not None
            and hmac.compare_digest(offered, self.token)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed(scope):
            how = "a loopback client (kubectl port-forward) or the --debug-token-file bearer token"
            response = JSONResponse({"error": f"{scope['path'][:100]} is only for {how}"}, 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
