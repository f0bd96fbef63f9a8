"""The secure gRPC port (15012): TLS with the mesh-issued serving certificate, and whatever
services the composition root registers on it (the CSR service now; ADS later).

    server = SecureGrpcServer(identity, [certificates.register], SecureServerOptions(port=15012))
    port = await server.start()
    ...
    await server.stop()

Each registrar is a callable that adds its service to the `grpc.aio.Server` (for ADS:
`lambda s: add_to_server(ads, s)`, `control.plane.xds.ads.service`). Limits for
hostile clients are the plaintext port's (`GrpcLimits`: a connection cap, a handshake timeout,
streams per connection, message size, keepalive enforcement, connection age). The serving
certificate is refreshed in
the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from control.plane.ca.serving_cert import ServingIdentity
from control.serving.grpc_limits import GrpcLimits, grpc_server

log = logging.getLogger("mizzen.ca")

Registrar = Callable[[grpc.aio.Server], None]


@dataclass(frozen=True, slots=True)
class SecureServerOptions:
    port: int = 15012
    host: str = ""  # "" = every address (dual stack, or IPv4 where IPv6 is off)
    # The same guards as the plaintext xDS port (`control.serving.grpc_limits`).
    limits: GrpcLimits = field(default_factory=GrpcLimits)
    require_client_cert: bool = False
    refresh_interval: float = 30.0


class SecureGrpcServer:
    def __init__(
        self,
        identity: ServingIdentity,
        registrars: Sequence[Registrar],
        options: SecureServerOptions | None = None,
    ) -> None:
        self.identity = identity
        self.registrars = list(registrars)
        self.options = options or SecureServerOptions()
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        server = grpc_server(self.options.limits)
        for register in self.registrars:
            register(server)
        credentials = self.identity.credentials(self.options.require_client_cert)
        hosts = [self.options.host] if self.options.host else ["[::]", "0.0.0.0"]
        for host in hosts:
            try:
                self.port = server.add_secure_port(f"{host}:{self.options.port}", credentials)
            except RuntimeError:
                continue
            if self.port:
                break
        if not self.port:
            raise OSError(f"cannot listen on the secure port {self.options.port}")
        await server.start()
        self._server = server
        self._refresher = asyncio.create_task(self._refresh(), name="serving-cert")
        log.info("secure gRPC port %d (TLS, names %s)", self.port, ", ".join(self.identity.names))
        return self.port

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.options.refresh_interval)
            await asyncio.to_thread(self.identity.refresh)

    async def stop(self, grace: float = 0.5) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
