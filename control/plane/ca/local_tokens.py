"""Local mode's token issuer: without Kubernetes, the control plane issues and checks tokens
shaped like projected service-account tokens, signed with a key of its own in `--ca-dir`.

`mizzen token create` prints one; the agent sends it as a Kubernetes pod would send its
projected token; `LocalTokenAuthenticator` accepts only tokens signed by that key, for the CA's
audience, inside their validity (with a small leeway for clock skew), naming a service account.
"""

# ruff: noqa: S105 (names of tokens and secrets, not secrets)

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec

from control.identity.files import FileReadError, ensure_private_dir, read_bounded, write_atomic
from control.identity.keys import load_private_key, private_key_pem
from control.identity.spiffe import IdentityError, SpiffeId
from control.plane.ca import jwt
from control.plane.ca.authn import AuthenticationError
from control.plane.ca.refusals import Reason
from control.plane.ca.store import CaStoreError, locked

TOKEN_KEY_FILE: Final = "token-key.pem"
ISSUER: Final = "mizzen://local-token-issuer"
DEFAULT_AUDIENCE: Final = "mizzen-ca"
DEFAULT_LEEWAY: Final = timedelta(seconds=30)
MAX_TOKEN_TTL: Final = timedelta(days=366)


def load_or_create_token_key(ca_dir: Path) -> ec.EllipticCurvePrivateKey:
    """The issuer's P-256 key in `ca_dir` (0600), created on first use."""
    path = ca_dir / TOKEN_KEY_FILE
    try:
        ensure_private_dir(ca_dir)
        with locked(ca_dir):
            if not path.exists():
                key = ec.generate_private_key(ec.SECP256R1())
                write_atomic(path, private_key_pem(key), 0o600)
                return key
            loaded = load_private_key(read_bounded(path, 64 * 1024))
    except (OSError, FileReadError) as error:
        raise CaStoreError(f"{path}: {error}") from None
    except ValueError as error:
        raise CaStoreError(f"{path}: {error}") from None
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise CaStoreError(f"{path}: the token key must be ECDSA P-256")
    return loaded


def token_claims(
    identity: SpiffeId, audience: str, ttl: timedelta, now: datetime
) -> dict[str, Any]:
    """A projected service-account token's claims (Kubernetes' shape)."""
    if not timedelta(0) < ttl <= MAX_TOKEN_TTL:
        raise ValueError(f"token lifetime must be > 0 and at most {MAX_TOKEN_TTL.days} days")
    issued = int(now.timestamp())
    account_uid = uuid.uuid5(uuid.NAMESPACE_URL, f"mizzen:{identity.username}")
    return {
        "iss": ISSUER,
        "sub": identity.username,
        "aud": [audience],
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ttl.total_seconds()),
        "kubernetes.io": {
            "namespace": identity.namespace,
            "serviceaccount": {"name": identity.service_account, "uid": str(account_uid)},
        },
    }


def issue_token(
    key: ec.EllipticCurvePrivateKey,
    identity: SpiffeId,
    audience: str,
    ttl: timedelta,
    now: datetime,
) -> str:
    return jwt.sign(token_claims(identity, audience, ttl, now), key)


def _number(claims: Mapping[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(Reason.BAD_TOKEN, f"token claim {name!r} must be a number")
    return float(value)


class LocalTokenAuthenticator:
    """Implements `Authenticator` for the local issuer's tokens."""

    def __init__(
        self,
        keys: Mapping[str, ec.EllipticCurvePublicKey],
        audience: str,
        trust_domain: str,
        clock: Callable[[], datetime],
        leeway: timedelta = DEFAULT_LEEWAY,
    ) -> None:
        self.keys = dict(keys)
        self.audience = audience
        self.trust_domain = trust_domain
        self.clock = clock
        self.leeway = leeway.total_seconds()

    @classmethod
    def for_key(
        cls,
        key: ec.EllipticCurvePrivateKey,
        audience: str,
        trust_domain: str,
        clock: Callable[[], datetime],
    ) -> LocalTokenAuthenticator:
        public = key.public_key()
        return cls({jwt.key_id(public): public}, audience, trust_domain, clock)

    def authenticate(self, token: str) -> SpiffeId:
        try:
            claims = jwt.verify(token, self.keys)
        except jwt.JwtError as error:
            raise AuthenticationError(Reason.BAD_TOKEN, f"token rejected: {error}") from None
        now = self.clock().timestamp()
        expires = _number(claims, "exp", required=True)
        assert expires is not None
        if now > expires + self.leeway:
            raise AuthenticationError(Reason.EXPIRED_TOKEN, "token expired")
        not_before = _number(claims, "nbf", required=False)
        issued = _number(claims, "iat", required=False)
        for name, value in (("nbf", not_before), ("iat", issued)):
            if value is not None and value > now + self.leeway:
                raise AuthenticationError(Reason.BAD_TOKEN, f"token not valid yet ({name})")
        if claims.get("iss") != ISSUER:
            raise AuthenticationError(Reason.BAD_TOKEN, "token from another issuer")
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise AuthenticationError(
                Reason.WRONG_AUDIENCE, f"token is not for the audience {self.audience!r}"
            )
        return self._identity(claims)

    def _identity(self, claims: Mapping[str, Any]) -> SpiffeId:
        subject = claims.get("sub")
        try:
            identity = SpiffeId.from_username(str(subject), self.trust_domain)
        except IdentityError as error:
            raise AuthenticationError(Reason.NOT_A_SERVICE_ACCOUNT, str(error)) from None
        kube = claims.get("kubernetes.io")
        if kube is not None:
            account = kube.get("serviceaccount") if isinstance(kube, dict) else None
            name = account.get("name") if isinstance(account, dict) else None
            if not isinstance(kube, dict) or (kube.get("namespace"), name) != (
                identity.namespace,
                identity.service_account,
            ):
                raise AuthenticationError(
                    Reason.BAD_TOKEN, "the kubernetes.io claim disagrees with the subject"
                )
        return identity
