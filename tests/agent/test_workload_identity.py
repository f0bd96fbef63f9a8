"""The agent's renewal loop on a simulated clock, signed by a real CA in-process: renewal at half
life, retries with backoff while the CA is away (the current certificate stays served), roots
followed from the file, and answers that are not for this workload refused."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from control.agent.csr_client import CaCallError
from control.agent.identity import WorkloadIdentity
from control.agent.identity_settings import IdentitySettings
from control.agent.rotation import JITTER, retry_delay, rotation_delay
from control.agent.secrets import ROOTS, WORKLOAD, SecretStore
from control.identity.keys import KeySpec, generate_key
from control.identity.pem import certificate_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.authority import CertificateAuthority, Origin
from control.plane.ca.material import self_signed_root
from control.plane.ca.refusals import Refusal
from control.plane.ca.signer import SigningPolicy, build_leaf
from control.plane.ca.store import FileCaStore

pytestmark = pytest.mark.anyio
START = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
WEB = "spiffe://cluster.local/ns/shop/sa/web"


def test_rotation_is_at_half_life_with_a_little_jitter() -> None:
    assert rotation_delay(1000, 1020, 1000, 0.5) == pytest.approx(10)
    assert rotation_delay(1000, 1020, 1000, 0.0) == pytest.approx(10 - 20 * JITTER)
    assert rotation_delay(1000, 1020, 1000, 0.999999) == pytest.approx(10 + 20 * JITTER, abs=1e-4)
    assert rotation_delay(1000, 1020, 1015, 0.5) == 0  # overdue: now
    day = 86400
    assert rotation_delay(0, day, 0, 0.5) == day / 2


def test_retries_back_off_up_to_a_ceiling() -> None:
    delays = [retry_delay(n, 1.0, 30.0, 1.0) for n in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert retry_delay(3, 1.0, 30.0, 0.0) == 4  # jitter: between half and all of the step


class Clock:
    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []
        self.budget = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.budget <= 0:
            raise asyncio.CancelledError
        self.budget -= 1
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class InProcessSigner:
    """The agent's `CertificateSigner`, answered by a real CertificateAuthority."""

    def __init__(self, authority: CertificateAuthority, identity: str = WEB) -> None:
        self.authority = authority
        self.identity = SpiffeId.parse(identity)
        self.down = False
        self.calls = 0

    async def create_certificate(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        self.calls += 1
        if self.down:
            raise CaCallError("ca:15012: UNAVAILABLE: connection refused")
        result = self.authority.sign(csr_pem, self.identity, timedelta(seconds=ttl_seconds))
        if isinstance(result, Refusal):
            raise CaCallError(str(result))
        return list(result.chain_pem)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Clock, CertificateAuthority, IdentitySettings]:
    clock = Clock()
    store = FileCaStore(tmp_path / "ca")
    material = store.create(
        self_signed_root(
            generate_key(KeySpec()), datetime.fromtimestamp(START, UTC), "cluster.local"
        )
    )
    authority = CertificateAuthority(
        Origin(store, plugin=False), material, SigningPolicy(), "cluster.local",
        lambda: datetime.fromtimestamp(clock.now, UTC),
    )  # fmt: skip
    settings = IdentitySettings(
        spiffe_id=WEB, token_path=tmp_path / "token", root_cert_path=tmp_path / "ca/root-cert.pem",
        sds_socket_path=tmp_path / "sds", ca_host="ca", ca_port=15012, discovery_host="ca",
        cert_ttl=20, retry_initial=1.0, retry_max=4.0,
    )  # fmt: skip
    return clock, authority, settings


def _identity(
    world: tuple[Clock, CertificateAuthority, IdentitySettings], signer: InProcessSigner
) -> tuple[WorkloadIdentity, SecretStore]:
    clock, _, settings = world
    store = SecretStore()
    identity = WorkloadIdentity(
        settings, signer, store, clock=clock, draw=lambda: 0.5, sleep=clock.sleep
    )
    return identity, store


def _serial(store: SecretStore) -> int:
    found = store.get(WORKLOAD)
    assert found is not None
    chain = found.secret.tls_certificate.certificate_chain.inline_bytes
    return x509.load_pem_x509_certificate(chain).serial_number


async def test_renewal_at_half_life_with_a_new_key_each_time(
    world: tuple[Clock, CertificateAuthority, IdentitySettings],
) -> None:
    clock, authority, _ = world
    identity, store = _identity(world, InProcessSigner(authority))
    clock.budget = 4
    serials = []
    keys = []

    original = store.set_workload

    def record(chain: bytes, key: bytes) -> None:
        original(chain, key)
        serials.append(_serial(store))
        keys.append(key)

    store.set_workload = record  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await identity.run_rotation()
    assert clock.sleeps == [0.0, pytest.approx(10), pytest.approx(10), pytest.approx(10)]
    assert len(set(serials)) == 4
    assert len(set(keys)) == 4
    assert store.get(ROOTS) is not None  # the roots were read before the first call


async def test_the_ca_away_keeps_the_current_certificate_and_retries(
    world: tuple[Clock, CertificateAuthority, IdentitySettings], caplog: pytest.LogCaptureFixture
) -> None:
    clock, authority, _ = world
    signer = InProcessSigner(authority)
    identity, store = _identity(world, signer)
    clock.budget = 1
    with pytest.raises(asyncio.CancelledError):
        await identity.run_rotation()  # first certificate, then the sleep until renewal
    first = _serial(store)
    signer.down = True
    clock.budget = 8
    with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
        await identity.run_rotation()
    # until half life, then backoff 1, 2, 4, 4 s (x0.75: the draw), the certificate served
    assert clock.sleeps[1:6] == [10.0, *(retry_delay(n, 1.0, 4.0, 0.5) for n in range(4))]
    assert clock.sleeps[4] == clock.sleeps[5] == 3.0
    assert _serial(store) == first
    assert "cannot renew the workload certificate" in caplog.text
    assert "EXPIRED" in caplog.text  # 20 s lifetime, ~21 s of retries: loud
    signer.down = False
    clock.budget = 2
    with pytest.raises(asyncio.CancelledError):
        await identity.run_rotation()
    assert _serial(store) != first


class LyingSigner(InProcessSigner):
    """A CA that certifies the agent's key under another identity."""

    async def create_certificate(self, csr_pem: str, ttl_seconds: int) -> list[str]:
        public_key = x509.load_pem_x509_csr(csr_pem.encode()).public_key()
        issuer = self.authority.issuer
        leaf = build_leaf(
            public_key,  # type: ignore[arg-type]
            [x509.UniformResourceIdentifier(self.identity.uri)],
            timedelta(seconds=ttl_seconds), self.authority.clock(), issuer, SigningPolicy(),
        )  # fmt: skip
        assert isinstance(leaf, x509.Certificate)
        return [certificate_pem(leaf), *issuer.chain_pem]


async def test_an_answer_for_another_identity_is_not_served(
    world: tuple[Clock, CertificateAuthority, IdentitySettings], caplog: pytest.LogCaptureFixture
) -> None:
    clock, authority, _ = world
    identity, store = _identity(world, LyingSigner(authority, "spiffe://cluster.local/ns/a/sa/b"))
    clock.budget = 2
    with pytest.raises(asyncio.CancelledError):
        await identity.run_rotation()
    assert store.get(WORKLOAD) is None
    assert "names ['spiffe://cluster.local/ns/a/sa/b']" in caplog.text


async def test_roots_are_followed_from_the_file(
    world: tuple[Clock, CertificateAuthority, IdentitySettings], caplog: pytest.LogCaptureFixture
) -> None:
    _, authority, settings = world
    identity, store = _identity(world, InProcessSigner(authority))
    assert await identity.load_roots()
    assert not await identity.load_roots()  # unchanged: nothing pushed
    first = store.get(ROOTS)
    assert first is not None
    path = settings.root_cert_path
    other = self_signed_root(generate_key(KeySpec()), datetime.now(UTC), "cluster.local")
    path.write_bytes(path.read_bytes() + other.root_cert)  # a rotation's second root
    assert await identity.load_roots()
    second = store.get(ROOTS)
    assert second is not None
    assert second.version != first.version
    assert len(identity.roots) == 2
    path.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        assert not await identity.load_roots()
        assert not await identity.load_roots()
    assert caplog.text.count("keeping the current roots") == 1  # once per problem
    assert len(identity.roots) == 2
