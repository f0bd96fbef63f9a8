"""The webhooks' serving certificate from the mesh CA (`--webhook-cert-dir DIR`): issued into
`DIR/tls.crt` and `DIR/tls.key` before the webhooks listen, for the control plane's Service
names, and renewed at half its life (`control.plane.leader.serving_cert.ServingCertRotator`);
the webhook server reloads the files. The API server trusts it through the mesh root the
leader writes into the webhooks' `caBundle`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from control.identity.keys import KeySpec, generate_key, private_key_pem
from control.identity.pem import general_name
from control.plane.ca.authority import CertificateAuthority
from control.plane.ca.ca_settings import CaSettings
from control.plane.ca.refusals import Refusal
from control.plane.ca.serving_cert import service_names
from control.plane.leader.seams import IssuedCertificate
from control.plane.leader.serving_cert import ServingCertRotator
from webhook.settings import ServerSettings

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


class WebhookCertError(RuntimeError):
    """The mesh CA could not issue the webhooks' first certificate (or it cannot be read)."""


def webhook_files(directory: Path) -> tuple[Path, Path]:
    return directory / CERT_FILE, directory / KEY_FILE


def webhook_names(settings: CaSettings) -> list[str]:
    """The Service's DNS forms and the advertised DNS names (the API server calls webhooks by
    their Service's name; the rotator checks DNS names only, so addresses are left out)."""
    names = service_names(
        settings.service_name,
        settings.namespace,
        settings.cluster_domain,
        settings.advertise_addresses,
    )
    return [name for name in names if not _is_address(name)]


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class _Parts(Protocol):
    """What `webhook_rotator` reads of the webhooks' parts (`control_cmd.WebhookParts`)."""

    @property
    def settings(self) -> ServerSettings: ...

    @property
    def issued_names(self) -> tuple[str, ...]: ...


class AuthorityIssuer:
    """`ServingCertIssuer` of the mesh CA: a fresh key and a certificate for DNS names."""

    def __init__(self, authority: CertificateAuthority, key_spec: KeySpec | None = None) -> None:
        self.authority = authority
        self.key_spec = key_spec or KeySpec()

    def issue(self, dns_names: Sequence[str], lifetime: timedelta) -> IssuedCertificate:
        key = generate_key(self.key_spec)
        result = self.authority.issue(key, [general_name(n) for n in dns_names], lifetime)
        if isinstance(result, Refusal):
            raise RuntimeError(f"the mesh CA refused a serving certificate: {result}")
        _, chain = result
        return IssuedCertificate("".join(chain).encode(), private_key_pem(key))


def webhook_rotator(authority: CertificateAuthority, parts: _Parts) -> ServingCertRotator:
    return ServingCertRotator(
        AuthorityIssuer(authority),
        parts.settings.cert_file,
        parts.settings.key_file,
        parts.issued_names,
    )
