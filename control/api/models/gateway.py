"""Gateway (networking.istio.io): the servers (ports, hosts, TLS) a gateway proxy listens with.

mizzen validates Gateways as Istio does but does not run gateway proxies: routes bound to a
Gateway are not programmed (the VirtualService rules warn about that).
"""

from __future__ import annotations

from pydantic import Field

from control.api.models.base import ApiModel, Str, UInt
from control.api.models.sidecar import ServerTLSSettings


class GatewayPort(ApiModel):
    number: UInt | None = None
    protocol: Str | None = None
    name: Str | None = None
    target_port: UInt | None = None
    """Deprecated in Istio; refused on Gateways."""


class Server(ApiModel):
    port: GatewayPort | None = None
    bind: Str | None = None
    hosts: tuple[Str, ...] = ()
    tls: ServerTLSSettings | None = None
    default_endpoint: Str | None = None
    name: Str | None = None


class Gateway(ApiModel):
    """The spec of a Gateway."""

    servers: tuple[Server, ...] = ()
    selector: dict[Str, Str] = Field(default_factory=dict)
