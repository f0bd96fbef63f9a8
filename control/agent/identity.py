"""The workload's identity in the proxy container: a key made in memory, a certificate from the
mesh CA, both served to Envoy over SDS, renewed at half life; the trusted roots followed from
the mounted root file.

- Renewal: a new key (it never leaves the process) and CSR per certificate; the CA's answer is
  checked (`workload_cert.check_chain`) before Envoy sees it.
- CA unreachable or refusing: retry with backoff; the current certificate stays served until it
  expires, and every failure is logged at ERROR (CRITICAL once the certificate has expired).
- Roots: the root file is polled; a changed, readable bundle is pushed as `ROOTCA`; a broken one
  keeps the last good bundle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from control.agent.csr_client import CaCallError, CertificateSigner, GrpcCertificateSigner
from control.agent.identity_settings import IdentitySettings
from control.agent.rotation import retry_delay, rotation_delay
from control.agent.sds import SdsServer
from control.agent.secrets import SecretStore
from control.agent.workload_cert import RejectedCertificateError, WorkloadCertificate, check_chain
from control.identity.files import FileReadError, read_bounded
from control.identity.keys import build_csr, generate_key, private_key_pem
from control.identity.pem import MAX_BUNDLE_BYTES, PemError, certificates_pem, load_certificates

log = logging.getLogger("mizzen.agent.identity")

Sleep = Callable[[float], Awaitable[None]]


class WorkloadIdentity:
    def __init__(
        self,
        settings: IdentitySettings,
        signer: CertificateSigner,
        store: SecretStore,
        *,
        clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.store = store
        self.clock = clock
        self.draw = draw
        self.sleep = sleep
        self.current: WorkloadCertificate | None = None
        self.roots: list[x509.Certificate] = []
        self._roots_pem = b""
        self._root_error = ""

    async def load_roots(self) -> bool:
        """Read the root file; True when a new bundle was taken (and pushed as ROOTCA)."""
        path = self.settings.root_cert_path
        try:
            data = await asyncio.to_thread(read_bounded, path, MAX_BUNDLE_BYTES)
            if data == self._roots_pem:
                return False
            roots = load_certificates(data, str(path))
        except (FileReadError, PemError) as error:
            if str(error) != self._root_error:  # once per distinct problem, not every poll
                self._root_error = str(error)
                log.warning("keeping the current roots: %s", error)
            return False
        self._roots_pem = data
        self._root_error = ""
        self.roots = roots
        self.store.set_roots(certificates_pem(roots))
        log.info("trusting %d root(s) from %s", len(roots), path)
        return True

    async def renew(self) -> WorkloadCertificate:
        """One attempt: key, CSR, call, check. Raises CaCallError or RejectedCertificateError."""
        key = await asyncio.to_thread(generate_key, self.settings.key_spec)
        csr = build_csr(key, self.settings.spiffe_id).decode()
        chain_pem = await self.signer.create_certificate(csr, self.settings.cert_ttl)
        received = self.clock()
        chain = check_chain(
            chain_pem,
            key,
            self.settings.spiffe_id,
            self.roots,
            datetime.fromtimestamp(received, UTC),
        )
        return WorkloadCertificate(
            certificates_pem(chain), private_key_pem(key), chain[0], received
        )

    def _publish(self, certificate: WorkloadCertificate) -> None:
        self.current = certificate
        self.store.set_workload(certificate.chain_pem, certificate.key_pem)
        log.info(
            "workload certificate for %s, serial %s, valid until %s",
            self.settings.spiffe_id,
            certificate.serial,
            certificate.leaf.not_valid_after_utc.isoformat(),
        )

    def _until_renewal(self) -> float:
        if self.current is None:
            return 0.0
        return rotation_delay(
            self.current.received_at, self.current.not_after, self.clock(), self.draw()
        )

    def _complain(self, error: Exception, retry_in: float) -> None:
        current = self.current
        if current is None:
            log.error("no workload certificate yet: %s (retrying in %.1fs)", error, retry_in)
            return
        left = current.not_after - self.clock()
        expiry = current.leaf.not_valid_after_utc.isoformat()
        if left <= 0:
            log.critical(
                "workload certificate EXPIRED at %s and cannot be renewed: %s (retrying in %.1fs)",
                expiry, error, retry_in,
            )  # fmt: skip
        else:
            log.error(
                "cannot renew the workload certificate: %s; the current one expires at %s "
                "(in %.0fs); retrying in %.1fs",
                error, expiry, left, retry_in,
            )  # fmt: skip

    async def run_rotation(self) -> None:
        """Get a certificate, then renew it at half life, for ever."""
        while True:
            await self.sleep(self._until_renewal())
            attempt = 0
            while True:
                try:
                    if not self.roots:
                        await self.load_roots()
                    certificate = await self.renew()
                    break
                except Exception as error:  # nothing may end renewal: retry, loudly
                    if not isinstance(error, CaCallError | RejectedCertificateError):
                        log.exception("unexpected failure renewing the certificate")
                    wait = retry_delay(
                        attempt, self.settings.retry_initial, self.settings.retry_max, self.draw()
                    )
                    self._complain(error, wait)
                    attempt += 1
                    await self.sleep(wait)
            self._publish(certificate)

    async def run_root_watch(self) -> None:
        while True:
            await self.sleep(self.settings.root_poll_interval)
            await self.load_roots()


class IdentityRuntime:
    """What `mizzen agent run` starts when identity is on: the SDS server and the two loops."""

    def __init__(self, settings: IdentitySettings, run_as: tuple[int, int] | None) -> None:
        self.settings = settings
        self.store = SecretStore()
        self.sds = SdsServer(self.store, Path(settings.sds_socket_path), run_as)
        signer = GrpcCertificateSigner(
            settings.ca_target, settings.token_path, settings.root_cert_path, settings.ca_timeout
        )
        self.identity = WorkloadIdentity(settings, signer, self.store)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.sds.start()  # before Envoy starts: its bootstrap points at this socket
        await self.identity.load_roots()
        self._tasks = [
            asyncio.create_task(self.identity.run_rotation(), name="cert-rotation"),
            asyncio.create_task(self.identity.run_root_watch(), name="root-watch"),
        ]
        log.info(
            "identity %s: CA %s, %s key",
            self.settings.spiffe_id, self.settings.ca_target, self.settings.key_spec.describe(),
        )  # fmt: skip

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.sds.stop()
