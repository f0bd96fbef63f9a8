"""A port's protocol, as Istio reads it: `appProtocol` first, then the port name's prefix
(`http`, `http-web`, `grpc-api`, ...). Anything else is TCP for now (Istio would sniff)."""

from __future__ import annotations

from enum import StrEnum


class Protocol(StrEnum):
    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-Web"
    TCP = "TCP"
    TLS = "TLS"
    HTTPS = "HTTPS"
    MONGO = "Mongo"
    MYSQL = "MySQL"
    REDIS = "Redis"
    UDP = "UDP"

    @property
    def is_http(self) -> bool:
        """Routed by Envoy's HTTP connection manager (and VirtualService http rules)."""
        return self in (Protocol.HTTP, Protocol.HTTP2, Protocol.GRPC, Protocol.GRPC_WEB)

    @property
    def is_http2(self) -> bool:
        """The upstream must be spoken to in HTTP/2."""
        return self in (Protocol.HTTP2, Protocol.GRPC)


_BY_NAME: dict[str, Protocol] = {
    "http": Protocol.HTTP,
    "http2": Protocol.HTTP2,
    "grpc": Protocol.GRPC,
    "grpc-web": Protocol.GRPC_WEB,
    "tcp": Protocol.TCP,
    "tls": Protocol.TLS,
    "https": Protocol.HTTPS,
    "mongo": Protocol.MONGO,
    "mysql": Protocol.MYSQL,
    "redis": Protocol.REDIS,
    "udp": Protocol.UDP,
    # Kubernetes' standard appProtocol values.
    "kubernetes.io/h2c": Protocol.HTTP2,
    "kubernetes.io/ws": Protocol.HTTP,
    "kubernetes.io/wss": Protocol.TLS,
}


def from_name(value: str | None) -> Protocol | None:
    """A protocol by its exact (case-insensitive) name, or None."""
    return _BY_NAME.get(value.lower()) if value else None


def port_protocol(name: str, app_protocol: str | None = None, transport: str = "TCP") -> Protocol:
    """The protocol of a Service port."""
    if transport == "UDP":
        return Protocol.UDP
    explicit = from_name(app_protocol)
    if explicit is not None:
        return explicit
    lowered = name.lower()
    if lowered in _BY_NAME:
        return _BY_NAME[lowered]
    # `grpc-web-x` must not read as `grpc`: try the longest prefixes first.
    for prefix in sorted(_BY_NAME, key=len, reverse=True):
        if "/" not in prefix and lowered.startswith(prefix + "-"):
            return _BY_NAME[prefix]
    return Protocol.TCP
