"""Why the CA said no: one enum, reused in gRPC messages, logs and the metric's `reason` label."""

# ruff: noqa: S105 (names of tokens and secrets, not secrets)

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    NO_TOKEN = "no_token"
    BAD_TOKEN = "bad_token"  # unparseable, bad signature, unknown key, wrong issuer
    EXPIRED_TOKEN = "expired_token"
    WRONG_AUDIENCE = "wrong_audience"
    NOT_AUTHENTICATED = "not_authenticated"  # the TokenReview said no
    NOT_A_SERVICE_ACCOUNT = "not_a_service_account"
    REVIEW_UNAVAILABLE = "review_unavailable"  # the API server could not be asked
    CSR_TOO_LARGE = "csr_too_large"
    CSR_UNPARSEABLE = "csr_unparseable"
    CSR_BAD_SIGNATURE = "csr_bad_signature"
    WEAK_KEY = "weak_key"
    BAD_LIFETIME = "bad_lifetime"
    IDENTITY_MISMATCH = "identity_mismatch"  # the CSR asks for another identity
    OVERLOADED = "overloaded"
    CA_UNAVAILABLE = "ca_unavailable"  # no usable signing certificate (expired, not loaded)


# Reasons that are about who the caller is, as opposed to what it asked for.
AUTHENTICATION_REASONS = frozenset(
    {
        Reason.NO_TOKEN,
        Reason.BAD_TOKEN,
        Reason.EXPIRED_TOKEN,
        Reason.WRONG_AUDIENCE,
        Reason.NOT_AUTHENTICATED,
        Reason.NOT_A_SERVICE_ACCOUNT,
    }
)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: Reason
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
