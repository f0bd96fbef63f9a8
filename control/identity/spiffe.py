"""SPIFFE ids of the mesh: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.

The CA derives the id from the authenticated caller (a Kubernetes service account), never from
what a CSR asks for; both sides parse and print ids here so they cannot disagree on the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

SCHEME: Final = "spiffe://"
SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"
# SPIFFE's trust domain alphabet; Kubernetes' DNS-1123 label (namespace) and subdomain (SA).
_TRUST_DOMAIN: Final = re.compile(r"^[a-z0-9._-]{1,255}$")
_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class IdentityError(ValueError):
    """Not a mesh identity; the message says what is wrong (the input is shown truncated)."""


def shorten(text: str, limit: int = 80) -> str:
    """For messages and logs: untrusted text, truncated and escaped."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


@dataclass(frozen=True, slots=True)
class SpiffeId:
    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise IdentityError(f"trust domain {shorten(self.trust_domain)} is not valid")
        if not _LABEL.match(self.namespace):
            raise IdentityError(f"namespace {shorten(self.namespace)} is not a DNS-1123 label")
        if not _SUBDOMAIN.match(self.service_account):
            raise IdentityError(
                f"service account {shorten(self.service_account)} is not a DNS-1123 subdomain"
            )

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        if len(uri) > 2048 or not uri.startswith(SCHEME):
            raise IdentityError(f"{shorten(uri)} is not a spiffe:// URI")
        parts = uri[len(SCHEME) :].split("/")
        if len(parts) != 5 or parts[1] != "ns" or parts[3] != "sa":
            raise IdentityError(f"{shorten(uri)} is not spiffe://<domain>/ns/<ns>/sa/<sa>")
        return cls(parts[0], parts[2], parts[4])

    @classmethod
    def from_username(cls, username: str, trust_domain: str) -> SpiffeId:
        """From Kubernetes' `system:serviceaccount:<ns>:<sa>` (a TokenReview's username)."""
        if len(username) > 512 or not username.startswith(SERVICE_ACCOUNT_PREFIX):
            raise IdentityError(f"{shorten(username)} is not a service account")
        rest = username[len(SERVICE_ACCOUNT_PREFIX) :].split(":")
        if len(rest) != 2:
            raise IdentityError(f"{shorten(username)} is not system:serviceaccount:<ns>:<sa>")
        return cls(trust_domain, rest[0], rest[1])

    @property
    def username(self) -> str:
        return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.service_account}"
