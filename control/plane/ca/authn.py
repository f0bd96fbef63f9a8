"""Who is calling: the `Authenticator` seam between the CSR service and the ways a token is
checked (the local issuer's JWTs, Kubernetes TokenReview). Blocking: the service runs it off the
event loop. A refusal is an `AuthenticationError` carrying the reason and a clear message."""

from __future__ import annotations

from typing import Protocol

from control.identity.spiffe import SpiffeId
from control.plane.ca.refusals import Reason, Refusal


class AuthenticationError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(reason, message)


class Authenticator(Protocol):
    def authenticate(self, token: str) -> SpiffeId:
        """The caller's identity; raises AuthenticationError."""
        ...
