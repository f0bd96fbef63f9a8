"""The control plane container's ports, mounts and arguments: the one place the Deployment's
`args` are written, so a new `mizzen control` flag is added here and nowhere else (a test parses
the rendered args with the real `mizzen control` parser).

Flags of the identity work still to merge (`--secure-port`, the CA's Secret mode,
`--advertise-address`) go here when they exist; until then the Service's 15012 has no listener.
"""

from __future__ import annotations

from typing import Final

from control.install.values import InstallValues

XDS_PLAINTEXT_PORT: Final = 15010  # tools and tests; not in the Service
SECURE_PORT: Final = 15012  # xDS and the CA over TLS: what injected proxies use
MONITORING_PORT: Final = 15014  # /ready and /metrics (debug endpoints stay loopback-only)
WEBHOOK_PORT: Final = 15017  # the admission webhooks; the Service maps 443 to it
WEBHOOK_SERVICE_PORT: Final = 443

MESH_CONFIG_DIR: Final = "/etc/mizzen/mesh"
INJECTION_CONFIG_DIR: Final = "/etc/mizzen/inject"
# Each replica's own webhook serving certificate, issued by the mesh CA and rotated in place
# (an emptyDir: never shared, never in a Secret); the webhook reloads it when it changes.
WEBHOOK_CERT_DIR: Final = "/var/run/mizzen/webhook-tls"
WEBHOOK_CERT_FILE: Final = f"{WEBHOOK_CERT_DIR}/tls.crt"
WEBHOOK_KEY_FILE: Final = f"{WEBHOOK_CERT_DIR}/tls.key"


def control_plane_args(values: InstallValues, mesh_key: str, injection_key: str) -> list[str]:
    """`mizzen control`'s argv after the program name, as the Deployment runs it."""
    return [
        "control",
        "--kube",
        f"--xds-port={XDS_PLAINTEXT_PORT}",
        f"--debug-port={MONITORING_PORT}",
        f"--webhook-port={WEBHOOK_PORT}",
        f"--tls-cert={WEBHOOK_CERT_FILE}",
        f"--tls-key={WEBHOOK_KEY_FILE}",
        f"--mesh-config={MESH_CONFIG_DIR}/{mesh_key}",
        f"--injection-config={INJECTION_CONFIG_DIR}/{injection_key}",
        f"--log-level={values.control_plane.log_level}",
    ]
