"""The signer: a pure function of a CSR, the authenticated identity, a lifetime, the time and
the CA's keys, returning a certificate chain or a refusal with its reason.

What a workload certificate is (Istio's rules): exactly one URI SAN, the caller's SPIFFE id,
never anything the CSR asked for (a CSR asking for another identity is refused; one asking for
the caller's own is fine, as Istio's agent sends); the lifetime asked for, or the default (24 h),
at most the maximum (90 days) and never past the signing certificate; NotBefore backdated a little
for clock skew; not a CA; serverAuth and clientAuth. The chain is returned leaf first, root last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from control.identity.keys import PrivateKey, PublicKey, key_weakness, signature_hash
from control.identity.pem import certificate_pem
from control.identity.spiffe import SpiffeId
from control.plane.ca.refusals import Reason, Refusal

MAX_CSR_BYTES: Final = 64 * 1024
_EMPTY_NAME: Final = x509.Name([])
_LEAF_USAGE: Final = x509.ExtendedKeyUsage(
    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
)


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    default_ttl: timedelta = timedelta(hours=24)
    max_ttl: timedelta = timedelta(days=90)
    backdate: timedelta = timedelta(minutes=2)
    max_csr_bytes: int = MAX_CSR_BYTES

    def __post_init__(self) -> None:
        if self.default_ttl <= timedelta(0) or self.max_ttl < self.default_ttl:
            raise ValueError("the default lifetime must be > 0 and at most the maximum")


@dataclass(frozen=True, slots=True)
class Issuer:
    """A usable signing key: its certificate, the chain from it to the root (what every issued
    certificate is followed by), and the trust bundle (one root, two during a root rotation)."""

    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # certificate, intermediates..., root
    roots: tuple[x509.Certificate, ...]
    chain_pem: tuple[str, ...]
    authority_key_id: x509.AuthorityKeyIdentifier

    @classmethod
    def create(
        cls,
        key: PrivateKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        roots: Sequence[x509.Certificate],
    ) -> Issuer:
        try:
            ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            ski = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
        return cls(
            key=key,
            certificate=certificate,
            chain=tuple(chain),
            roots=tuple(roots),
            chain_pem=tuple(certificate_pem(c) for c in chain),
            authority_key_id=x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
        )

    @property
    def roots_pem(self) -> str:
        return "".join(certificate_pem(c) for c in self.roots)


@dataclass(frozen=True, slots=True)
class Issued:
    leaf: x509.Certificate
    chain_pem: tuple[str, ...]  # leaf first, root last


def _lifetime(requested: timedelta | None, policy: SigningPolicy) -> timedelta | Refusal:
    if requested is None:
        return policy.default_ttl
    if requested <= timedelta(0):
        return Refusal(Reason.BAD_LIFETIME, f"requested lifetime {requested} must be > 0")
    return min(requested, policy.max_ttl)


def check_csr(csr_pem: str, identity: SpiffeId, policy: SigningPolicy) -> PublicKey | Refusal:
    """The CSR's public key, if the CSR is small, well formed, carries an acceptable key, is
    signed by that key, and asks for no identity other than the caller's."""
    data = csr_pem.encode("utf-8", "replace")
    if len(data) > policy.max_csr_bytes:
        return Refusal(Reason.CSR_TOO_LARGE, f"CSR of {len(data)} bytes (at most {MAX_CSR_BYTES})")
    try:
        csr = x509.load_pem_x509_csr(data)
        public_key = csr.public_key()
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as error:
        return Refusal(Reason.CSR_UNPARSEABLE, f"CSR is not a PEM certificate request: {error}")
    except Exception as error:  # unsupported algorithms raise their own types
        return Refusal(Reason.CSR_UNPARSEABLE, f"CSR cannot be read: {type(error).__name__}")
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return Refusal(Reason.WEAK_KEY, key_weakness(public_key) or "not an ECDSA or RSA key")
    weakness = key_weakness(public_key)  # before the signature: no work for a huge RSA key
    if weakness:
        return Refusal(Reason.WEAK_KEY, weakness)
    try:
        signature_ok = csr.is_signature_valid
    except Exception as error:  # an unsupported signature algorithm
        return Refusal(Reason.CSR_BAD_SIGNATURE, f"CSR signature unusable: {type(error).__name__}")
    if not signature_ok:
        return Refusal(Reason.CSR_BAD_SIGNATURE, "the CSR's signature does not verify")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return public_key
    except (ValueError, x509.DuplicateExtension) as error:
        return Refusal(Reason.CSR_UNPARSEABLE, f"CSR extensions cannot be read: {error}")
    asked = [str(name.value) for name in san]
    if any(not isinstance(name, x509.UniformResourceIdentifier) for name in san) or any(
        uri != identity.uri for uri in asked
    ):
        shown = ", ".join(a[:120] for a in asked[:4])
        return Refusal(
            Reason.IDENTITY_MISMATCH,
            f"the CSR asks for {shown!r}; the caller may only have {identity.uri}",
        )
    return public_key


def build_leaf(
    public_key: PublicKey,
    names: Sequence[x509.GeneralName],
    lifetime: timedelta,
    now: datetime,
    issuer: Issuer,
    policy: SigningPolicy,
) -> x509.Certificate | Refusal:
    """A leaf certificate (empty subject, critical SANs, serverAuth+clientAuth, not a CA)."""
    ca_not_after = issuer.certificate.not_valid_after_utc
    if now >= ca_not_after or now < issuer.certificate.not_valid_before_utc:
        return Refusal(Reason.CA_UNAVAILABLE, "the signing certificate is not valid now")
    not_after = min(now + lifetime, ca_not_after)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),  # RSA key exchange (TLS 1.2)
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_EMPTY_NAME)
        .issuer_name(issuer.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - policy.backdate, issuer.certificate.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(_LEAF_USAGE, critical=False)
        .add_extension(issuer.authority_key_id, critical=False)
        # An empty subject makes the SANs the whole identity: RFC 5280 wants them critical.
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=True)
    )
    return builder.sign(issuer.key, signature_hash(issuer.key))


def sign_workload(
    csr_pem: str,
    identity: SpiffeId,
    requested: timedelta | None,
    now: datetime,
    issuer: Issuer,
    policy: SigningPolicy,
) -> Issued | Refusal:
    """The workload certificate for `identity` (the authenticated caller), or why not."""
    lifetime = _lifetime(requested, policy)
    if isinstance(lifetime, Refusal):
        return lifetime
    public_key = check_csr(csr_pem, identity, policy)
    if isinstance(public_key, Refusal):
        return public_key
    leaf = build_leaf(
        public_key,
        [x509.UniformResourceIdentifier(identity.uri)],
        lifetime,
        now,
        issuer,
        policy,
    )
    if isinstance(leaf, Refusal):
        return leaf
    return Issued(leaf, (certificate_pem(leaf), *issuer.chain_pem))
