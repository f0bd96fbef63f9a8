"""The running CA: the current `Issuer`, where it came from, and reloading it.

At start `bootstrap` picks the material: a plug-in CA when one is configured and present,
otherwise the self-signed CA of the store, created on first start. While running, `reload`
re-reads that same place (a root rotation's phases, a rotated plug-in Secret) and swaps the issuer
only when the new material is complete and consistent; anything else keeps the last good issuer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from control.identity.keys import PrivateKey
from control.identity.pem import certificate_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.material import CaMaterial, CaMaterialError, load_issuer
from control.plane.ca.refusals import Refusal
from control.plane.ca.signer import Issued, Issuer, SigningPolicy, build_leaf, sign_workload
from control.plane.ca.store import CaSource, CaStore, CaStoreError

log = logging.getLogger("mizzen.ca")

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Origin:
    source: CaSource
    plugin: bool  # signs as an intermediate of someone else's root


def bootstrap(
    store: CaStore, plugin: CaSource | None, make_root: Callable[[], CaMaterial]
) -> tuple[Origin, CaMaterial]:
    """Where the CA comes from and its material; raises CaStoreError or CaMaterialError."""
    if plugin is not None:
        material = plugin.load()
        if material is not None:
            load_issuer(material)  # refuse a broken plug-in CA now, naming the file
            return Origin(plugin, plugin=True), material
        log.info("%s absent: using the self-signed CA", plugin.describe())
    material = store.load()
    if material is None:
        material = store.create(make_root())
        log.info("CA ready in %s", store.describe())
    return Origin(store, plugin=False), material


class CertificateAuthority:
    """Thread-safe: signing threads read `issuer`; `reload` swaps it."""

    def __init__(
        self,
        origin: Origin,
        material: CaMaterial,
        policy: SigningPolicy,
        trust_domain: str,
        clock: Clock,
    ) -> None:
        self.origin = origin
        self.policy = policy
        self.trust_domain = trust_domain
        self.clock = clock
        self._material = material
        self._issuer = load_issuer(material)
        self._lock = threading.Lock()
        self.generation = 0  # bumped by every change of issuer or roots

    @property
    def issuer(self) -> Issuer:
        return self._issuer

    def sign(
        self, csr_pem: str, identity: SpiffeId, requested: timedelta | None
    ) -> Issued | Refusal:
        return sign_workload(csr_pem, identity, requested, self.clock(), self._issuer, self.policy)

    def issue(
        self, key: PrivateKey, names: list[x509.GeneralName], lifetime: timedelta
    ) -> tuple[x509.Certificate, tuple[str, ...]] | Refusal:
        """A certificate for the CA's own listeners (DNS/IP SANs), with its chain."""
        issuer = self._issuer
        leaf = build_leaf(key.public_key(), names, lifetime, self.clock(), issuer, self.policy)
        if isinstance(leaf, Refusal):
            return leaf
        return leaf, (certificate_pem(leaf), *issuer.chain_pem)

    def reload(self) -> bool:
        """Re-read the origin; True when the issuer or the roots changed."""
        try:
            material = self.origin.source.load()
        except (CaStoreError, CaMaterialError) as error:
            log.warning("keeping the current CA: %s", error)
            return False
        if material is None or material == self._material:
            return False
        try:
            issuer = load_issuer(material)
        except CaMaterialError as error:
            log.warning("keeping the current CA: %s: %s", self.origin.source.describe(), error)
            return False
        with self._lock:
            self._material = material
            self._issuer = issuer
            self.generation += 1
        log.info(
            "CA reloaded from %s: signing with %s, %d trusted root(s)",
            self.origin.source.describe(),
            issuer.certificate.subject.rfc4514_string(),
            len(issuer.roots),
        )
        return True

    async def watch(self, interval: float) -> None:
        """Reload every `interval` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.reload)
