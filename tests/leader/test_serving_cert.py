"""The webhook's serving certificate: issued through the CA seam for the Service's names,
written where the webhook server reloads it, renewed at half its life; real TLS handshakes check
what the API server would see."""

from __future__ import annotations

import contextlib
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from control.install.names import service_dns_names
from control.plane.leader.serving_cert import CertFacts, ServingCertRotator, renewal_due
from tests.leader.ca import TestCA
from webhook.tls import CertificateStore

NAMES = service_dns_names("mizzen", "mizzen-system", "cluster.local")
HOUR = timedelta(hours=1)


def handshake(store: CertificateStore, ca: TestCA, host: str) -> x509.Certificate:
    """A TLS handshake in memory: the webhook's live context against a client that trusts only
    the mesh root and checks the host name, as the API server does with caBundle."""
    client = ssl.create_default_context(cadata=ca.root_bundle())
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = store.server_context().wrap_bio(server_in, server_out, server_side=True)
    peer = client.wrap_bio(client_in, client_out, server_hostname=host)
    for _ in range(10):
        for side in (peer, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    der = peer.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def rotator(ca: TestCA, tmp_path: Path, now: datetime | None = None) -> ServingCertRotator:
    clock = [now or datetime.now(UTC)]
    made = ServingCertRotator(ca, tmp_path / "tls" / "tls.crt", tmp_path / "tls" / "tls.key",
                              NAMES, lifetime=24 * HOUR, now=lambda: clock[0])  # fmt: skip
    made.clock = clock  # type: ignore[attr-defined]
    return made


def test_issued_and_served_for_the_service_names(ca: TestCA, tmp_path: Path) -> None:
    cert = rotator(ca, tmp_path)
    due = cert.ensure()
    assert cert.issued == 1
    assert oct(cert.key_file.stat().st_mode & 0o777) == "0o600"
    store = CertificateStore(cert.cert_file, cert.key_file)
    assert store.load()
    for host in ("mizzen.mizzen-system.svc", "mizzen.mizzen-system.svc.cluster.local"):
        handshake(store, ca, host)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(store, ca, "evil.example.com")
    assert timedelta(hours=11) < due - datetime.now(UTC) <= timedelta(hours=12)


def test_renewed_at_half_life_and_reloaded_by_the_webhook(ca: TestCA, tmp_path: Path) -> None:
    cert = rotator(ca, tmp_path)
    cert.ensure()
    store = CertificateStore(cert.cert_file, cert.key_file)
    store.load()
    first = handshake(store, ca, NAMES[2]).serial_number
    cert.clock[0] += 11 * HOUR  # type: ignore[attr-defined]
    cert.ensure()
    assert cert.issued == 1  # not due yet
    cert.clock[0] += 2 * HOUR  # type: ignore[attr-defined]
    cert.ensure()
    assert cert.issued == 2
    store.poll()  # what the webhook's watcher does every second
    assert handshake(store, ca, NAMES[2]).serial_number != first


def test_a_certificate_missing_a_name_is_replaced(ca: TestCA, tmp_path: Path) -> None:
    cert = rotator(ca, tmp_path)
    cert.ensure()
    wider = ServingCertRotator(ca, cert.cert_file, cert.key_file,
                               [*NAMES, "mizzen.example.org"], lifetime=24 * HOUR)  # fmt: skip
    wider.ensure()
    assert wider.issued == 1


@pytest.mark.parametrize("content", ["garbage", "huge", "fifo"])
def test_an_unusable_file_is_replaced_without_blocking(
    ca: TestCA, tmp_path: Path, content: str
) -> None:
    cert = rotator(ca, tmp_path)
    cert.cert_file.parent.mkdir(parents=True)
    if content == "fifo":
        os.mkfifo(cert.cert_file)  # reading it would block for ever
    else:
        cert.cert_file.write_bytes(b"x" * (10_000_000 if content == "huge" else 10))
    cert.ensure()
    assert cert.issued == 1
    assert cert.cert_file.is_file()


def test_a_ca_failure_keeps_the_current_pair(ca: TestCA, tmp_path: Path) -> None:
    cert = rotator(ca, tmp_path)
    cert.ensure()
    before = cert.cert_file.read_bytes()
    cert.clock[0] += 20 * HOUR  # type: ignore[attr-defined]
    ca.failing = True
    with pytest.raises(RuntimeError, match="not ready"):
        cert.ensure()
    assert cert.cert_file.read_bytes() == before


def test_the_schedule() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    facts = CertFacts(start, start + 24 * HOUR, frozenset(NAMES))
    assert renewal_due(facts, NAMES, start + HOUR) == start + 12 * HOUR
    assert renewal_due(facts, NAMES, start + 13 * HOUR) == start + 13 * HOUR
    assert renewal_due(None, NAMES, start) == start
    assert renewal_due(facts, ["other"], start) == start
