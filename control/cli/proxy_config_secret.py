"""`mizzen proxy-config secret POD[.NAMESPACE]`: the certificates a proxy's Envoy holds, as
istioctl shows them: per SDS secret its type, the SPIFFE id, serial, validity and, for the
trust bundle, the roots. Read from Envoy's admin (`/config_dump?resource=dynamic_active_secrets`,
the private key redacted by Envoy); the control plane never holds workload certificates, so
this view has no control-plane side.

Envoy's answer is treated as untrusted input: sizes bounded, unparseable certificates shown as
such, every string cut to a width.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509

from control.cli.proxy_status_cmd import CommandError, fetch_json, render_table

HEADERS = ("RESOURCE NAME", "TYPE", "SPIFFE ID", "SERIAL NUMBER", "NOT BEFORE", "NOT AFTER",
           "ROOTS")  # fmt: skip
MAX_PEM_BYTES = 256 * 1024
MAX_SECRETS = 64


def _data_source(source: Any) -> bytes | None:
    """An Envoy DataSource's bytes (config_dump shows `inline_bytes` base64, or a string)."""
    if not isinstance(source, Mapping):
        return None
    encoded, text = source.get("inline_bytes"), source.get("inline_string")
    if isinstance(encoded, str):
        try:
            data: bytes = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
        return data[:MAX_PEM_BYTES]
    if isinstance(text, str):
        return text.encode()[:MAX_PEM_BYTES]
    return None


def _certificates(pem: bytes | None) -> list[x509.Certificate]:
    if not pem:
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []


def _spiffe(cert: x509.Certificate) -> str:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "-"
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return ",".join(u[:120] for u in uris if u.startswith("spiffe://")) or "-"


def _when(cert: x509.Certificate | None, which: str) -> str:
    if cert is None:
        return "-"
    moment = cert.not_valid_before_utc if which == "before" else cert.not_valid_after_utc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _label(root: x509.Certificate) -> str:
    for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME):
        attributes = root.subject.get_attributes_for_oid(oid)
        if attributes:
            return str(attributes[0].value)[:60]
    return f"serial {root.serial_number:x}"


def _root_names(roots: Sequence[x509.Certificate]) -> str:
    return f"{len(roots)}: " + "; ".join(_label(r) for r in roots) if roots else "-"


def _row(name: str, secret: Mapping[str, Any]) -> list[str] | None:
    tls, context = secret.get("tls_certificate"), secret.get("validation_context")
    if isinstance(tls, Mapping):
        chain = _certificates(_data_source(tls.get("certificate_chain")))
        if not chain:
            return [name, "Cert Chain", "(unreadable)", "-", "-", "-", "-"]
        leaf = chain[0]
        roots = [c for c in chain[1:] if c.subject == c.issuer]
        serial = f"{leaf.serial_number:x}"
        return [name, "Cert Chain", _spiffe(leaf), serial, _when(leaf, "before"),
                _when(leaf, "after"), _root_names(roots)]  # fmt: skip
    if isinstance(context, Mapping):
        roots = _certificates(_data_source(context.get("trusted_ca")))
        first = roots[0] if roots else None
        serial = f"{first.serial_number:x}" if first else "-"
        return [name, "CA", "-", serial, _when(first, "before"), _when(first, "after"),
                _root_names(roots)]  # fmt: skip
    return None


def secret_rows(document: Mapping[str, Any]) -> list[list[str]]:
    """One row per active secret of Envoy's config dump (bootstrap or SDS)."""
    rows: list[list[str]] = []
    configs = document.get("configs")
    for config in (configs if isinstance(configs, list) else [])[:MAX_SECRETS]:
        secret = config.get("secret") if isinstance(config, Mapping) else None
        if not isinstance(secret, Mapping):
            continue
        name = str(config.get("name") or secret.get("name") or "?")[:120]
        row = _row(name, secret)
        if row is not None:
            rows.append(row)
    return rows


def show_secrets(pod: str, admin: str) -> str:
    """The table for `pod` from the Envoy admin at `admin`; raises CommandError."""
    document = fetch_json(admin, "/config_dump", {"resource": "dynamic_active_secrets"})
    if not isinstance(document, Mapping):
        raise CommandError(f"{admin}: unexpected admin output")
    rows = secret_rows(document)
    if not rows:
        return f"# {pod}: Envoy holds no secrets (identity off, or not received yet)\n"
    return render_table(HEADERS, rows)
