"""Compact JWS with ES256 (ECDSA P-256, SHA-256), signed and verified with `cryptography`.

Written here rather than taken from a JWT library because the CA needs exactly one algorithm and
the classic mistakes are easiest to rule out in a page of code: the algorithm is pinned (the
header must say `ES256`; `none`, HMAC and RSA are refused, so no key confusion), the key is
chosen by `kid` from the verifier's own keys (never from the token), `crit` is refused, base64url
is decoded strictly, duplicate JSON keys are refused, and the token's size is capped before any
work. Claims are checked by the caller (`local_tokens.py`); this module only proves who signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHM: Final = "ES256"
MAX_TOKEN_BYTES: Final = 8192
_B64URL: Final = re.compile(r"^[A-Za-z0-9_-]*$")
_COORDINATE: Final = 32  # bytes of r and of s on P-256


class JwtError(ValueError):
    """Not a token this verifier accepts; the message says why (never echoes the token)."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise JwtError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JwtError("not base64url") from None


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """A stable id for a key: the SHA-256 of its SubjectPublicKeyInfo, shortened."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url_encode(hashlib.sha256(der).digest()[:16])


def _require_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if key.curve.name != "secp256r1":
        raise ValueError(f"ES256 needs a P-256 key, not {key.curve.name}")


def sign(claims: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    _require_p256(key)
    header = {"alg": ALGORITHM, "kid": key_id(key.public_key()), "typ": "JWT"}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(dict(claims), separators=(",", ":")).encode())
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(_COORDINATE, "big") + s.to_bytes(_COORDINATE, "big")
    return f"{signing_input}.{b64url_encode(raw)}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise JwtError(f"duplicate JSON member {name[:40]!r}")
        result[name] = value
    return result


def _json_object(data: bytes, part: str) -> dict[str, Any]:
    try:
        value = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as error:
        if isinstance(error, JwtError):
            raise JwtError(f"{part}: {error}") from None
        raise JwtError(f"{part} is not JSON") from None
    if not isinstance(value, dict):
        raise JwtError(f"{part} is not a JSON object")
    return value


def verify(token: str, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """The claims of a token signed by one of `keys` (by kid); raises JwtError."""
    if len(token) > MAX_TOKEN_BYTES:
        raise JwtError(f"token longer than {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("not a compact JWS (three dot-separated parts)")
    header = _json_object(b64url_decode(parts[0]), "header")
    if header.get("alg") != ALGORITHM:
        raise JwtError(f"algorithm {str(header.get('alg'))[:20]!r} is not accepted (ES256 only)")
    if "crit" in header:
        raise JwtError("critical header parameters are not supported")
    if header.get("typ", "JWT") != "JWT":
        raise JwtError("typ is not JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise JwtError("signed by an unknown key")
    signature = b64url_decode(parts[2])
    if len(signature) != 2 * _COORDINATE:
        raise JwtError("ES256 signature of the wrong length")
    der = encode_dss_signature(
        int.from_bytes(signature[:_COORDINATE], "big"),
        int.from_bytes(signature[_COORDINATE:], "big"),
    )
    try:
        keys[kid].verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise JwtError("bad signature") from None
    return _json_object(b64url_decode(parts[1]), "payload")
