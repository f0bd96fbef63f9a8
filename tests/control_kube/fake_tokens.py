"""The fake API server's service-account tokens and its TokenReview, modelled on the real one:

- a token is valid for the audiences it was issued for (a projected token's `audience`), until it
  expires or is revoked (its pod deleted);
- a review names the audiences the caller wants (none: the API server's own audiences); the
  token authenticates only if it is valid for at least one of them, and `status.audiences` is
  the intersection, in the requested order;
- an unknown, expired or revoked token is `authenticated: false` with an `error`, never an HTTP
  error: TokenReview answers 201 either way;
- the username is `system:serviceaccount:<ns>:<sa>` with the service-account groups.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

API_AUDIENCES: Final = ("https://kubernetes.default.svc.cluster.local",)


@dataclass(frozen=True, slots=True)
class _Token:
    namespace: str
    service_account: str
    audiences: tuple[str, ...]
    expires: float


class FakeTokenAuthority:
    def __init__(self, api_audiences: tuple[str, ...] = API_AUDIENCES) -> None:
        self.api_audiences = api_audiences
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.reviews = 0

    def issue(
        self,
        namespace: str,
        service_account: str,
        audiences: tuple[str, ...] = API_AUDIENCES,
        expires_in: float = 3600,
    ) -> str:
        token = "fake." + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(
                namespace, service_account, audiences, time.time() + expires_in
            )
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def review(self, spec: Any) -> dict[str, Any]:
        """The `status` of a TokenReview for `spec` (the request's spec, unchecked)."""
        with self._lock:
            self.reviews += 1
            token = spec.get("token") if isinstance(spec, dict) else None
            wanted = spec.get("audiences") if isinstance(spec, dict) else None
            found = self._tokens.get(token) if isinstance(token, str) else None
        wanted = list(wanted) if isinstance(wanted, list) and wanted else list(self.api_audiences)
        if found is None or found.expires < time.time():
            return {"authenticated": False, "user": {}, "error": "[invalid bearer token]"}
        matched = [a for a in wanted if a in found.audiences]
        if not matched:
            message = (
                f"[invalid bearer token, token audiences {list(found.audiences)} is invalid "
                f"for the target audiences {wanted}]"
            )
            return {"authenticated": False, "user": {}, "error": message}
        return {
            "authenticated": True,
            "user": {
                "username": f"system:serviceaccount:{found.namespace}:{found.service_account}",
                "uid": f"uid-{found.namespace}-{found.service_account}",
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{found.namespace}",
                    "system:authenticated",
                ],
            },
            "audiences": matched,
        }
