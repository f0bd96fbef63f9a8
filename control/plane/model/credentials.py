"""The certificates a DestinationRule's `credentialName` names, read from Kubernetes Secrets
(Istio's formats), checked before anything reaches a proxy. Pure: a Secret object in, a
`Credential` or a `CredentialError` (saying which key is wrong, never the key's content) out.

Formats, as Istio reads them for clients:
- a `kubernetes.io/tls` Secret: `tls.crt` (the client's chain), `tls.key`, and optionally
  `ca.crt` (the roots the server's certificate is checked against);
- a generic (Opaque) Secret: `cert`, `key`, and optionally `cacert`;
- the roots may instead be in a separate Secret `<name>-cacert` (key `cacert` or `ca.crt`).
Either pair of keys is taken from any Secret type, `tls.*` first, as Istio does.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from control.logsafe import untrusted

# A Secret's data, decoded, at most: certificates and a CA bundle fit many times over (the
# Kubernetes API caps a Secret at 1 MiB; a proxy gets this in every push of its secrets).
MAX_SECRET_BYTES: Final = 256 * 1024
CA_SUFFIX: Final = "-cacert"
_CERT_KEYS: Final = (("tls.crt", "tls.key"), ("cert", "key"))
_CA_KEYS: Final = ("ca.crt", "cacert")
# The largest RSA key a credential may hold. Checking an RSA private key (its factors' primality)
# grows steeply with its size, ~0.04 s at 2,048 bits, ~0.25 s at 4,096, ~4 s at 8,192, minutes
# beyond, and it runs where Secrets are read: anyone who may write a Secret a rule names could
# stall that with one large key, again at every update. Istio issues 2,048 or 4,096 bits.
MAX_RSA_BITS: Final = 4096
# What Envoy's TLS signs with besides RSA: ECDSA on these curves.
_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})


# A Kubernetes object name (DNS-1123 subdomain): what a Secret may be called.
_SECRET_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_NAME: Final = 253


def secret_name_problem(name: str) -> str | None:
    """Why `name` (a rule's `credentialName`, any text) cannot name a Secret, or None. Such a
    name is never asked for: it would reach the API's field selector and the watch's log lines."""
    if len(name) > _MAX_NAME or not _SECRET_NAME.fullmatch(name):
        shown = untrusted(name, 64)
        return f"{shown} is not a Secret name (lower case DNS subdomain, at most {_MAX_NAME})"
    return None


class CredentialError(ValueError):
    """A Secret that cannot serve as a credential; the message names the Secret's key."""


@dataclass(frozen=True, slots=True)
class Credential:
    """A client's certificate chain and key (both or neither) and the roots that check the
    server (optional: without them the proxy uses the system roots, as for `caCertificates`)."""

    namespace: str
    name: str
    cert: bytes | None = None
    key: bytes | None = None
    ca: bytes | None = None

    @property
    def key_pair(self) -> bool:
        return self.cert is not None and self.key is not None


def _data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    raw = secret.get("data") or {}
    if not isinstance(raw, Mapping):
        raise CredentialError("data: must be a mapping of base64 strings")
    found: dict[str, bytes] = {}
    total = 0
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise CredentialError("data: must be a mapping of base64 strings")
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CredentialError(f"data.{untrusted(key, 64)}: not base64") from None
        total += len(decoded)
        if total > MAX_SECRET_BYTES:
            raise CredentialError(f"data: more than {MAX_SECRET_BYTES} bytes")
        found[key] = decoded
    return found


def _certificates(data: bytes, where: str) -> bytes:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CredentialError(f"data.{where}: not PEM certificates") from None
    if not certificates:
        raise CredentialError(f"data.{where}: no certificate")
    return data


_PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _load_private_key(key: bytes, key_key: str, *, validate: bool) -> object:
    try:
        return serialization.load_pem_private_key(
            key, password=None, unsafe_skip_rsa_key_validation=not validate
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialError(f"data.{key_key}: not an unencrypted PEM private key") from None


def _private_key(key: bytes, key_key: str) -> _PrivateKey:
    """The private key of PEM `key`, its type and size checked before the costly validation
    (unvalidated, it only tells them: nothing is signed with it)."""
    unchecked = _load_private_key(key, key_key, validate=False)
    if isinstance(unchecked, rsa.RSAPrivateKey) and unchecked.key_size > MAX_RSA_BITS:
        problem = f"an RSA key of {unchecked.key_size} bits, more than {MAX_RSA_BITS}"
    elif isinstance(unchecked, ec.EllipticCurvePrivateKey) and unchecked.curve.name not in _CURVES:
        problem = f"an EC key on {unchecked.curve.name}, not P-256, P-384 or P-521"
    elif not isinstance(unchecked, _PrivateKey):
        problem = "neither an RSA nor an ECDSA key (what Envoy's TLS signs with)"
    else:
        # The same key, validated: of the type just checked.
        return cast(_PrivateKey, _load_private_key(key, key_key, validate=True))
    raise CredentialError(f"data.{key_key}: {problem}")


def _key_pair(cert: bytes, key: bytes, cert_key: str, key_key: str) -> None:
    _certificates(cert, cert_key)
    private = _private_key(key, key_key)
    leaf = x509.load_pem_x509_certificates(cert)[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if private.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(
        der, public
    ):
        raise CredentialError(f"data.{key_key}: does not match the certificate in {cert_key}")


def _ca(data: Mapping[str, bytes]) -> bytes | None:
    for key in _CA_KEYS:
        if key in data:
            return _certificates(data[key], key)
    return None


def parse_secret(secret: Mapping[str, Any], ca_secret: Mapping[str, Any] | None) -> Credential:
    """The credential of `secret`, its roots from `ca_secret` (`<name>-cacert`) when it has
    none itself. Raises CredentialError."""
    metadata = secret.get("metadata") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
    data = _data(secret)
    cert = key = None
    for cert_key, key_key in _CERT_KEYS:
        if cert_key in data or key_key in data:
            if cert_key not in data or key_key not in data:
                raise CredentialError(f"data: {cert_key} and {key_key} go together")
            cert, key = data[cert_key], data[key_key]
            _key_pair(cert, key, cert_key, key_key)
            break
    ca = _ca(data)
    if ca is None and ca_secret is not None:
        try:
            ca = _ca(_data(ca_secret))
        except CredentialError as error:
            raise CredentialError(f"Secret {name}{CA_SUFFIX}: {error}") from None
    if cert is None and ca is None:
        raise CredentialError(
            "data: none of tls.crt/tls.key, cert/key, ca.crt, cacert (nor a Secret "
            f"{name}{CA_SUFFIX})"
        )
    return Credential(namespace, name, cert, key, ca)
