"""Private keys, CSRs and the key-strength rule, for the CA and the agent alike.

Accepted keys: ECDSA on P-256 or P-384, RSA of 2048 bits or more (and at most 8192: a bigger
key is a way to make the CA burn CPU). mizzen's default is ECDSA P-256 (as Linkerd's); Istio's
agent defaults to RSA 2048 and takes ECDSA on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
RSA_MIN_BITS: Final = 2048
RSA_MAX_BITS: Final = 8192
_CURVES: Final = {"P256": ec.SECP256R1, "P384": ec.SECP384R1}


@dataclass(frozen=True, slots=True)
class KeySpec:
    """`ecdsa` with a curve (`P256`, `P384`), or `rsa` with a size in bits."""

    algorithm: Literal["ecdsa", "rsa"] = "ecdsa"
    curve: Literal["P256", "P384"] = "P256"
    rsa_bits: int = RSA_MIN_BITS

    def __post_init__(self) -> None:
        if self.algorithm == "rsa" and not RSA_MIN_BITS <= self.rsa_bits <= RSA_MAX_BITS:
            raise ValueError(f"RSA keys must have {RSA_MIN_BITS}..{RSA_MAX_BITS} bits")

    def describe(self) -> str:
        return f"ECDSA {self.curve}" if self.algorithm == "ecdsa" else f"RSA {self.rsa_bits}"


def generate_key(spec: KeySpec) -> PrivateKey:
    if spec.algorithm == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.rsa_bits)
    return ec.generate_private_key(_CURVES[spec.curve]())


def key_weakness(key: object) -> str | None:
    """Why a public key is not acceptable, or None when it is."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < RSA_MIN_BITS:
            return f"RSA key of {key.key_size} bits is too weak (at least {RSA_MIN_BITS})"
        if key.key_size > RSA_MAX_BITS:
            return f"RSA key of {key.key_size} bits is too large (at most {RSA_MAX_BITS})"
        if key.public_numbers().e < 65537:
            return "RSA public exponent below 65537"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            return f"elliptic curve {key.curve.name} is not accepted (P-256 or P-384)"
        return None
    return f"{type(key).__name__.removeprefix('_')} keys are not accepted (ECDSA or RSA)"


def signature_hash(key: PrivateKey | PublicKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-384 for P-384, SHA-256 otherwise (what the key's strength calls for)."""
    if (
        isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
        and key.curve.name == "secp384r1"
    ):
        return hashes.SHA384()
    return hashes.SHA256()


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """Raises ValueError for anything but an unencrypted ECDSA or RSA key of acceptable size."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (TypeError, ValueError) as error:  # TypeError: the key is encrypted
        raise ValueError(f"not a usable PEM private key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{type(key).__name__.removeprefix('_')} keys are not supported")
    weakness = key_weakness(key.public_key())
    if weakness:
        raise ValueError(weakness)
    return key


def build_csr(key: PrivateKey, uri_san: str) -> bytes:
    """A PEM CSR asking for one URI SAN (the workload's SPIFFE id), as Istio's agent sends."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri_san)]), critical=True
    )
    return builder.sign(key, signature_hash(key)).public_bytes(serialization.Encoding.PEM)


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(encoding, fmt) == b.public_bytes(encoding, fmt)
