"""Local mode's tokens: what `mizzen token create` makes is accepted; a hostile table of
everything else is refused with its reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from control.identity.spiffe import SpiffeId
from control.plane.ca import jwt
from control.plane.ca.authn import AuthenticationError
from control.plane.ca.local_tokens import (
    ISSUER,
    LocalTokenAuthenticator,
    issue_token,
    load_or_create_token_key,
    token_claims,
)
from control.plane.ca.refusals import Reason
from tests.ca.conftest import NOW, WEB

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def _authenticator(now: Any = NOW) -> LocalTokenAuthenticator:
    return LocalTokenAuthenticator.for_key(KEY, "mizzen-ca", "cluster.local", lambda: now)


def _claims(**changes: Any) -> dict[str, Any]:
    claims = token_claims(WEB, "mizzen-ca", timedelta(hours=1), NOW)
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return jwt.b64url_encode(raw)


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(header)}.{_b64(claims)}.{jwt.b64url_encode(signature)}"


def _hs256_with_public_key() -> str:
    """The classic confusion: HMAC keyed with the verifier's public key."""
    header = {"alg": "HS256", "kid": jwt.key_id(KEY.public_key()), "typ": "JWT"}
    signing_input = f"{_b64(header)}.{_b64(_claims())}".encode()
    public = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.HMAC(public, hashes.SHA256())
    mac.update(signing_input)
    return f"{signing_input.decode()}.{jwt.b64url_encode(mac.finalize())}"


def _swap_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64(claims)}.{signature}"


def _signed(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], body: bytes) -> str:
    """ES256 by hand, so the header and body can be anything."""
    signing_input = f"{_b64(header)}.{jwt.b64url_encode(body)}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{jwt.b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _duplicate_sub() -> str:
    body = json.dumps(_claims())[:-1] + ', "sub": "system:serviceaccount:kube-system:admin"}'
    return _signed(KEY, {"alg": "ES256", "kid": jwt.key_id(KEY.public_key())}, body.encode())


kid = jwt.key_id(KEY.public_key())
HOSTILE: list[tuple[str, Callable[[], str], Reason]] = [
    ("garbage", lambda: "not a token", Reason.BAD_TOKEN),
    ("two parts", lambda: "a.b", Reason.BAD_TOKEN),
    ("bad base64", lambda: "a*b.c.d", Reason.BAD_TOKEN),
    ("alg none", lambda: _forged({"alg": "none", "kid": kid}, _claims()), Reason.BAD_TOKEN),
    ("alg None spelled otherwise", lambda: _forged({"alg": "NONE", "kid": kid}, _claims()),
     Reason.BAD_TOKEN),
    ("HS256 with the public key", _hs256_with_public_key, Reason.BAD_TOKEN),
    ("signed by another key", lambda: jwt.sign(_claims(), OTHER_KEY), Reason.BAD_TOKEN),
    ("another key claiming our kid",
     lambda: _signed(OTHER_KEY, {"alg": "ES256", "kid": kid}, json.dumps(_claims()).encode()),
     Reason.BAD_TOKEN),
    ("payload changed after signing",
     lambda: _swap_payload(jwt.sign(_claims(), KEY), _claims(sub="system:serviceaccount:a:b")),
     Reason.BAD_TOKEN),
    ("no kid", lambda: _forged({"alg": "ES256"}, _claims(), b"x" * 64), Reason.BAD_TOKEN),
    ("crit header", lambda: _forged({"alg": "ES256", "kid": kid, "crit": ["exp"]}, _claims(),
                                    b"x" * 64), Reason.BAD_TOKEN),
    ("signature of the wrong length", lambda: jwt.sign(_claims(), KEY)[:-4], Reason.BAD_TOKEN),
    ("duplicate sub claim", _duplicate_sub, Reason.BAD_TOKEN),
    ("oversized", lambda: jwt.sign(_claims(pad="x" * 9000), KEY), Reason.BAD_TOKEN),
    ("expired", lambda: jwt.sign(_claims(exp=int(NOW.timestamp()) - 31), KEY),
     Reason.EXPIRED_TOKEN),
    ("no exp", lambda: jwt.sign(_claims(exp=None), KEY), Reason.BAD_TOKEN),
    ("exp as text", lambda: jwt.sign(_claims(exp="tomorrow"), KEY), Reason.BAD_TOKEN),
    ("not yet valid", lambda: jwt.sign(_claims(nbf=int(NOW.timestamp()) + 120), KEY),
     Reason.BAD_TOKEN),
    ("wrong audience", lambda: jwt.sign(_claims(aud=["kubernetes"]), KEY), Reason.WRONG_AUDIENCE),
    ("no audience", lambda: jwt.sign(_claims(aud=None), KEY), Reason.WRONG_AUDIENCE),
    ("another issuer", lambda: jwt.sign(_claims(iss="https://evil"), KEY), Reason.BAD_TOKEN),
    ("a user, not a service account", lambda: jwt.sign(_claims(sub="alice"), KEY),
     Reason.NOT_A_SERVICE_ACCOUNT),
    ("kubernetes.io disagrees with sub",
     lambda: jwt.sign(_claims(**{"kubernetes.io": {"namespace": "kube-system",
                                                   "serviceaccount": {"name": "web"}}}), KEY),
     Reason.BAD_TOKEN),
]  # fmt: skip


@pytest.mark.parametrize(("make", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_tokens_are_refused(make: Callable[[], str], reason: Reason) -> None:
    with pytest.raises(AuthenticationError) as refused:
        _authenticator().authenticate(make())
    assert refused.value.refusal.reason == reason, refused.value.refusal
    assert "eyJ" not in refused.value.refusal.message  # the token is never echoed


def test_a_created_token_is_accepted_with_a_small_leeway() -> None:
    token = issue_token(KEY, WEB, "mizzen-ca", timedelta(hours=12), NOW)
    assert _authenticator().authenticate(token) == WEB
    assert _authenticator(NOW + timedelta(hours=12, seconds=20)).authenticate(token) == WEB
    with pytest.raises(AuthenticationError):
        _authenticator(NOW + timedelta(hours=12, seconds=40)).authenticate(token)
    other = SpiffeId("cluster.local", "billing", "api")
    assert (
        _authenticator().authenticate(
            issue_token(KEY, other, "mizzen-ca", timedelta(minutes=5), NOW)
        )
        == other
    )


def test_the_token_is_shaped_like_a_projected_service_account_token() -> None:
    token = issue_token(KEY, WEB, "mizzen-ca", timedelta(hours=12), NOW)
    header = json.loads(jwt.b64url_decode(token.split(".")[0]))
    claims = json.loads(jwt.b64url_decode(token.split(".")[1]))
    assert header == {"alg": "ES256", "kid": jwt.key_id(KEY.public_key()), "typ": "JWT"}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:shop:web"
    assert claims["aud"] == ["mizzen-ca"]
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert claims["nbf"] == claims["iat"] == int(NOW.timestamp())
    assert claims["kubernetes.io"]["namespace"] == "shop"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "web"


def test_the_token_key_is_made_once_and_private(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    first = load_or_create_token_key(directory)
    again = load_or_create_token_key(directory)
    assert first.private_numbers() == again.private_numbers()
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    assert oct((directory / "token-key.pem").stat().st_mode & 0o777) == "0o600"
