"""Kubernetes mode's authentication: the API server's TokenReview says whose token it is.

Accepted only when the review says `authenticated: true`, lists the CA's audience among the
audiences the token is valid for, and names a service account (`system:serviceaccount:<ns>:<sa>`).
An API server that cannot be asked means refusal, never acceptance. Successful reviews are cached
briefly by the token's SHA-256 (bounded, least recently used first out), so a burst of CSRs from
one pod costs one review; failures are never cached.
"""

# ruff: noqa: S105 (names of tokens and secrets, not secrets)

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from control.identity.spiffe import IdentityError, SpiffeId
from control.plane.ca.authn import AuthenticationError
from control.plane.ca.kube_calls import KubeCallError, KubeJson
from control.plane.ca.refusals import Reason

TOKEN_REVIEW_PATH: Final = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass(frozen=True, slots=True)
class ReviewResult:
    authenticated: bool
    username: str = ""
    audiences: tuple[str, ...] = ()
    error: str = ""


class ReviewUnavailableError(Exception):
    """The reviewer could not give an answer (the API server is down, forbids us, ...)."""


class TokenReviewer(Protocol):
    def review(self, token: str, audiences: Sequence[str]) -> ReviewResult: ...


class KubeTokenReviewer:
    """`TokenReviewer` over the API server (needs `create` on `tokenreviews`)."""

    def __init__(self, api: KubeJson) -> None:
        self.api = api

    def review(self, token: str, audiences: Sequence[str]) -> ReviewResult:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": list(audiences)},
        }
        try:
            answer = self.api.call("POST", TOKEN_REVIEW_PATH, body)
        except KubeCallError as error:
            raise ReviewUnavailableError(f"TokenReview failed: {error}") from None
        status = answer.get("status")
        if not isinstance(status, dict):
            return ReviewResult(False, error="the TokenReview has no status")
        user = status.get("user") if isinstance(status.get("user"), dict) else {}
        assert isinstance(user, dict)
        found = status.get("audiences")
        return ReviewResult(
            authenticated=status.get("authenticated") is True,
            username=str(user.get("username", "")),
            audiences=tuple(a for a in found if isinstance(a, str))
            if isinstance(found, list)
            else (),
            error=str(status.get("error", ""))[:200],
        )


class TokenReviewAuthenticator:
    """Implements `Authenticator` with a `TokenReviewer` and a small cache."""

    def __init__(
        self,
        reviewer: TokenReviewer,
        audience: str,
        trust_domain: str,
        clock: Callable[[], float],
        cache_seconds: float = 60.0,
        cache_size: int = 4096,
    ) -> None:
        self.reviewer = reviewer
        self.audience = audience
        self.trust_domain = trust_domain
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, tuple[SpiffeId, float]] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> SpiffeId:
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        now = self.clock()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and cached[1] > now:
                self._cache.move_to_end(digest)
                return cached[0]
        try:
            result = self.reviewer.review(token, [self.audience])
        except ReviewUnavailableError as error:
            raise AuthenticationError(Reason.REVIEW_UNAVAILABLE, str(error)) from None
        identity = self._check(result)
        with self._lock:
            self._cache[digest] = (identity, now + self.cache_seconds)
            self._cache.move_to_end(digest)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return identity

    def _check(self, result: ReviewResult) -> SpiffeId:
        if not result.authenticated:
            detail = f": {result.error}" if result.error else ""
            raise AuthenticationError(Reason.NOT_AUTHENTICATED, f"token not authenticated{detail}")
        if self.audience not in result.audiences:
            raise AuthenticationError(
                Reason.WRONG_AUDIENCE, f"token is not valid for the audience {self.audience!r}"
            )
        try:
            return SpiffeId.from_username(result.username, self.trust_domain)
        except IdentityError as error:
            raise AuthenticationError(Reason.NOT_A_SERVICE_ACCOUNT, str(error)) from None
