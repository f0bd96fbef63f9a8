"""The mesh CA inside `mizzen control`: its flags, and the two TLS ports it adds.

- the secure port (`--secure-port`, 15012): ADS over mutual TLS. The client certificate is
  required and must chain to the mesh roots; the node it sends must be the certificate's
  (`control.plane.xds.ads.peer_identity`).
- the CA port (`--ca-port`, 15013): the CSR API (`IstioCertificateService/CreateCertificate`)
  over server-only TLS, callers authenticated by their token. Istio serves both on 15012, asking
  for a client certificate but not requiring one; Python gRPC can only require one or not ask,
  and a workload's first CSR has no certificate yet, hence a port of its own.

Both serve the serving certificate the mesh CA issues for the Service's names and every
`--advertise-address`. The CA is loaded before either port listens (the control plane is not
ready until then): from `--ca-dir` at once (an unusable directory stops the start), or with
`--kube` from the Secret, retried with backoff while the API server cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from control.cli.ca_wiring import IdentityParts, add_ca_flags, build_identity, secure_server
from control.plane.ca.ca_metrics import CitadelCounters
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.material import CaMaterialError
from control.plane.ca.secure_port import Registrar, SecureGrpcServer
from control.plane.ca.store import CaStoreError
from control.serving.grpc_limits import GrpcLimits

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger("mizzen.ca")

SECURE_PORT = 15012
CA_PORT = 15013


class CaStartError(RuntimeError):
    """The CA could not be loaded (local mode: not retried); the message names the place."""


def add_identity_flags(parser: argparse.ArgumentParser, port: Callable[[str], int]) -> None:
    """The CA's flags (`ca_wiring.add_ca_flags`) and the two ports; `port` parses a port."""
    add_ca_flags(parser)
    group = parser.add_argument_group("identity ports (with --ca-dir or --kube)")
    group.add_argument(
        "--secure-port", type=port, default=SECURE_PORT,
        help="ADS over mutual TLS, client certificate required (0: any)",
    )  # fmt: skip
    group.add_argument(
        "--ca-port", type=port, default=CA_PORT,
        help="the CSR API (CreateCertificate) over TLS, token-authenticated (0: any)",
    )  # fmt: skip


@dataclass(frozen=True)
class IdentityConfig:
    """What the control plane needs to run the CA: its settings, the Kubernetes client (with
    `--kube`) and where to listen."""

    settings: CaSettings
    kube_client: ApiClient | None = None
    secure_port: int = SECURE_PORT
    ca_port: int = CA_PORT
    host: str = ""  # "" = every address
    retry_initial: float = 1.0
    retry_max: float = 30.0


class PlaneIdentity:
    """The CA and its two ports, started by the control plane once its config is loaded."""

    def __init__(
        self,
        config: IdentityConfig,
        registry: CollectorRegistry,
        citadel: CitadelCounters | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.citadel = citadel
        self.parts: IdentityParts | None = None
        self.secure_port = 0
        self.ca_port = 0
        self._servers: list[SecureGrpcServer] = []
        self._watcher: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self.parts is not None

    def _build(self) -> IdentityParts:
        config, registry = self.config, self.registry
        return build_identity(config.settings, config.kube_client, registry, citadel=self.citadel)

    async def _load(self) -> IdentityParts:
        delay = self.config.retry_initial
        while True:
            try:
                return await asyncio.to_thread(self._build)
            except (CaStoreError, CaMaterialError) as error:
                text = " ".join(str(error).split())[:300]
                if not self.config.settings.kube:
                    raise CaStartError(text) from None
                log.error("the CA cannot be loaded yet (retry in %.0fs): %s", delay, text)
            await asyncio.sleep(delay)
            delay = min(self.config.retry_max, delay * 2)

    async def start(self, ads: Registrar, limits: GrpcLimits | None = None) -> None:
        """Load the CA (blocking work in a thread), then listen, both ports with `limits` (the
        plaintext xDS port's). Raises CaStartError (local mode) or OSError (a port taken)."""
        limits = limits or GrpcLimits()
        parts = self.parts = await self._load()
        secure = secure_server(
            parts, self.config.secure_port, [ads], host=self.config.host,
            require_client_cert=True, with_certificates=False, limits=limits,
        )  # fmt: skip
        self.secure_port = await secure.start()
        self._servers.append(secure)
        certificates = secure_server(
            parts, self.config.ca_port, host=self.config.host, limits=limits
        )
        self.ca_port = await certificates.start()
        self._servers.append(certificates)
        interval = self.config.settings.reload_interval
        self._watcher = asyncio.create_task(parts.authority.watch(interval), name="ca-reload")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for server in self._servers:
            await server.stop()
        self._servers = []
        if self.parts is not None:
            self.parts.close()
