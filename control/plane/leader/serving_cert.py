"""The webhook's serving certificate: issued by the mesh CA for the Service's DNS names, written
where the webhook server reloads it (`webhook.tls.CertificateStore` polls the two files), and
renewed when half its lifetime is gone.

This one runs on *every* replica, not only on the leader: each replica writes its own pair into
its own emptyDir, as istiod does with its DNS certificate. Nothing is shared, so no Secret to
write, no kubelet sync delay (a mounted Secret can take a minute to reach a pod), and a replica
that starts alone serves its webhook as soon as the CA can sign. The API server trusts any of
them through the root the leader puts in `caBundle`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509

from control.config.files import read_bytes
from control.plane.leader.seams import ServingCertIssuer

log = logging.getLogger("mizzen.leader")
MAX_CERT_BYTES: Final = 64 * 1024
Now = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CertFacts:
    not_before: datetime
    not_after: datetime
    dns_names: frozenset[str]


def renewal_due(facts: CertFacts | None, wanted: Sequence[str], now: datetime) -> datetime:
    """When the certificate must be replaced: now when there is none, it lacks a wanted name,
    or it is past half its lifetime; else at half its lifetime."""
    if facts is None or not set(wanted) <= facts.dns_names:
        return now
    half = facts.not_before + (facts.not_after - facts.not_before) / 2
    return half if half > now else now


def read_facts(cert_file: Path) -> CertFacts | None:
    """The first certificate of the file, or None when it is absent or unusable (which only
    means: issue a new one)."""
    try:  # a regular file, bounded, never blocking (a FIFO swapped in is refused)
        leaf = x509.load_pem_x509_certificate(read_bytes(cert_file, MAX_CERT_BYTES))
    except (OSError, ValueError):
        return None
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = frozenset(names.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = frozenset()
    return CertFacts(leaf.not_valid_before_utc, leaf.not_valid_after_utc, dns)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


class ServingCertRotator:
    def __init__(
        self,
        issuer: ServingCertIssuer,
        cert_file: Path,
        key_file: Path,
        dns_names: Sequence[str],
        lifetime: timedelta = timedelta(days=7),
        now: Now = _utc_now,
    ) -> None:
        if not dns_names:
            raise ValueError("a serving certificate needs at least one DNS name")
        self.issuer = issuer
        self.cert_file = cert_file
        self.key_file = key_file
        self.dns_names = tuple(dns_names)
        self.lifetime = lifetime
        self.now = now
        self.issued = 0

    def ensure(self) -> datetime:
        """Issue a new pair when one is due; when the next one is. Raises when the CA cannot
        sign (the current pair, if any, stays in place)."""
        now = self.now()
        due = renewal_due(read_facts(self.cert_file), self.dns_names, now)
        if due > now:
            return due
        issued = self.issuer.issue(self.dns_names, self.lifetime)
        self.cert_file.parent.mkdir(parents=True, exist_ok=True)
        # The key first: the webhook loads a pair only when key and certificate match, so in
        # between it keeps serving the old pair.
        _write(self.key_file, issued.key_pem, 0o600)
        _write(self.cert_file, issued.cert_chain_pem, 0o644)
        self.issued += 1
        log.info("webhook serving certificate issued for %s", ", ".join(self.dns_names[:4]))
        return renewal_due(read_facts(self.cert_file), self.dns_names, now)

    async def run(self, retry: float = 5.0, longest_sleep: float = 3600.0) -> None:
        """Keep the pair current until cancelled."""
        while True:
            try:
                due = await asyncio.to_thread(self.ensure)
                delay = min(longest_sleep, max(1.0, (due - self.now()).total_seconds()))
            except Exception as error:  # the CA not ready yet, a full disk: try again soon
                log.warning("webhook serving certificate: %s", " ".join(str(error).split())[:300])
                delay = retry
            await asyncio.sleep(delay)
