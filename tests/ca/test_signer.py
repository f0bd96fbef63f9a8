"""The pure signer: what a workload certificate is, and the refusals (a hostile table)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from control.identity.keys import KeySpec, generate_key
from control.identity.pem import uri_sans
from control.identity.spiffe import SpiffeId
from control.plane.ca.material import CaMaterial, CaMaterialError, load_issuer, self_signed_root
from control.plane.ca.refusals import Reason, Refusal
from control.plane.ca.signer import Issued, Issuer, SigningPolicy, sign_workload
from tests.ca.conftest import NOW, WEB, csr_for, intermediate_material

POLICY = SigningPolicy()


def _issue(issuer: Issuer, csr: str, requested: timedelta | None = None) -> Issued:
    result = sign_workload(csr, WEB, requested, NOW, issuer, POLICY)
    assert isinstance(result, Issued), result
    return result


def _chain(result: Issued) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(p.encode()) for p in result.chain_pem]


def test_a_workload_certificate_is_the_callers_identity_and_nothing_else(issuer: Issuer) -> None:
    key, csr = csr_for(WEB.uri)
    leaf, root = _chain(_issue(issuer, csr))
    assert uri_sans(leaf) == [WEB.uri]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert len(list(san.value)) == 1
    assert leaf.subject == x509.Name([])
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert root == issuer.certificate  # leaf first, root last
    leaf.verify_directly_issued_by(root)


def test_a_csr_without_sans_still_gets_the_callers_identity(issuer: Issuer) -> None:
    key = generate_key(KeySpec())
    bare = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "whatever")]))
        .sign(key, hashes.SHA256())
    )
    leaf, _ = _chain(_issue(issuer, bare.public_bytes(serialization.Encoding.PEM).decode()))
    assert uri_sans(leaf) == [WEB.uri]
    assert leaf.subject == x509.Name([])  # the CSR's subject is not copied


def test_lifetimes(issuer: Issuer) -> None:
    _, csr = csr_for()
    default = _chain(_issue(issuer, csr))[0]
    assert default.not_valid_after_utc - NOW == timedelta(hours=24)
    assert NOW - default.not_valid_before_utc == timedelta(minutes=2)  # backdated for skew
    asked = _chain(_issue(issuer, csr, timedelta(hours=1)))[0]
    assert asked.not_valid_after_utc - NOW == timedelta(hours=1)
    capped = _chain(_issue(issuer, csr, timedelta(days=400)))[0]
    assert capped.not_valid_after_utc - NOW == timedelta(days=90)
    assert _chain(_issue(issuer, csr, timedelta(seconds=20)))[0].not_valid_after_utc - NOW == (
        timedelta(seconds=20)
    )


def test_never_past_the_signing_certificate() -> None:
    short = self_signed_root(generate_key(KeySpec()), NOW, "cluster.local", timedelta(hours=2))
    leaf = _chain(_issue(load_issuer(short), csr_for()[1]))[0]
    assert leaf.not_valid_after_utc == load_issuer(short).certificate.not_valid_after_utc
    expired = sign_workload(csr_for()[1], WEB, None, NOW + timedelta(hours=3), load_issuer(short),
                            POLICY)  # fmt: skip
    assert isinstance(expired, Refusal)
    assert expired.reason == Reason.CA_UNAVAILABLE


def test_an_rsa_root_signs_too() -> None:
    issuer = load_issuer(self_signed_root(generate_key(KeySpec("rsa")), NOW, "cluster.local"))
    leaf, root = _chain(_issue(issuer, csr_for()[1]))
    leaf.verify_directly_issued_by(root)
    assert isinstance(root.public_key(), rsa.RSAPublicKey)


def test_a_plug_in_ca_signs_as_an_intermediate(root_material: CaMaterial) -> None:
    issuer = load_issuer(intermediate_material(root_material))
    leaf, intermediate, root = _chain(_issue(issuer, csr_for()[1]))
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    assert root.subject == root.issuer


def test_broken_material_is_refused_naming_the_file(root_material: CaMaterial) -> None:
    other = self_signed_root(generate_key(KeySpec()), NOW, "cluster.local")
    with pytest.raises(CaMaterialError, match=r"ca-key\.pem does not match ca-cert\.pem"):
        load_issuer(CaMaterial(other.ca_key, root_material.ca_cert, b"", root_material.root_cert))
    plugin = intermediate_material(root_material)
    with pytest.raises(CaMaterialError, match=r"not in root-cert\.pem"):
        load_issuer(CaMaterial(plugin.ca_key, plugin.ca_cert, plugin.ca_cert, other.root_cert))


def _tampered_csr() -> str:
    _key, csr = csr_for()
    der = bytearray(x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    try:
        parsed = x509.load_der_x509_csr(bytes(der))
    except ValueError:
        return "garbage"
    return parsed.public_bytes(serialization.Encoding.PEM).decode()


def _csr_with_key(key: object, uri: str = WEB.uri) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[arg-type]


def _csr_with_names(*names: x509.GeneralName) -> str:
    key = generate_key(KeySpec())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


HOSTILE = [
    ("empty", lambda: "", None, Reason.CSR_UNPARSEABLE),
    ("not PEM", lambda: "hello", None, Reason.CSR_UNPARSEABLE),
    ("a certificate, not a CSR", lambda: self_signed_root(
        generate_key(KeySpec()), NOW, "x").ca_cert.decode(), None, Reason.CSR_UNPARSEABLE),
    ("truncated", lambda: csr_for()[1][:200], None, Reason.CSR_UNPARSEABLE),
    ("badly signed", _tampered_csr, None, Reason.CSR_BAD_SIGNATURE),
    ("RSA 1024", lambda: _csr_with_key(rsa.generate_private_key(65537, 1024)),  # noqa: S505
     None, Reason.WEAK_KEY),
    ("secp256k1", lambda: _csr_with_key(ec.generate_private_key(ec.SECP256K1())), None,
     Reason.WEAK_KEY),
    ("P-521", lambda: _csr_with_key(ec.generate_private_key(ec.SECP521R1())), None,
     Reason.WEAK_KEY),
    ("Ed25519", lambda: _csr_with_key(ed25519.Ed25519PrivateKey.generate()), None,
     Reason.WEAK_KEY),
    ("another identity", lambda: csr_for("spiffe://cluster.local/ns/kube-system/sa/admin")[1],
     None, Reason.IDENTITY_MISMATCH),
    ("another trust domain", lambda: csr_for("spiffe://evil.example/ns/shop/sa/web")[1], None,
     Reason.IDENTITY_MISMATCH),
    ("own identity plus a DNS name", lambda: _csr_with_names(
        x509.UniformResourceIdentifier(WEB.uri), x509.DNSName("api.example.com")), None,
     Reason.IDENTITY_MISMATCH),
    ("own identity twice plus another", lambda: _csr_with_names(
        x509.UniformResourceIdentifier(WEB.uri),
        x509.UniformResourceIdentifier("spiffe://cluster.local/ns/shop/sa/db")), None,
     Reason.IDENTITY_MISMATCH),
    ("lifetime 0 s", lambda: csr_for()[1], timedelta(0), Reason.BAD_LIFETIME),
    ("negative lifetime", lambda: csr_for()[1], timedelta(seconds=-5), Reason.BAD_LIFETIME),
    ("over 64 KiB", lambda: csr_for()[1] + " " * 65536, None, Reason.CSR_TOO_LARGE),
]  # fmt: skip


@pytest.mark.parametrize(("make", "requested", "reason"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_hostile_csrs_are_refused_with_their_reason(
    issuer: Issuer, make: object, requested: timedelta | None, reason: Reason
) -> None:
    assert callable(make)
    result = sign_workload(make(), WEB, requested, NOW, issuer, POLICY)
    assert isinstance(result, Refusal), f"signed: {result}"
    assert result.reason == reason, result
    assert result.message


def test_the_callers_own_san_twice_is_still_its_identity(issuer: Issuer) -> None:
    csr = _csr_with_names(
        x509.UniformResourceIdentifier(WEB.uri), x509.UniformResourceIdentifier(WEB.uri)
    )
    assert uri_sans(_chain(_issue(issuer, csr))[0]) == [WEB.uri]


def test_the_identity_comes_from_the_caller_not_the_csr(issuer: Issuer) -> None:
    other = SpiffeId("cluster.local", "billing", "api")
    _, csr = csr_for(other.uri)
    result = sign_workload(csr, other, None, NOW, issuer, POLICY)
    assert isinstance(result, Issued)
    assert uri_sans(result.leaf) == [other.uri]
    assert isinstance(sign_workload(csr, WEB, None, NOW, issuer, POLICY), Refusal)
