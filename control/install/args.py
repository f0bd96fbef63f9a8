"""The control plane container's ports, mounts and arguments: the one place the Deployment's
`args` are written, so a new `mizzen control` flag is added here and nowhere else (a test parses
the rendered args with the real `mizzen control` parser).

With `--kube` the CA lives in the Secret `mizzen-ca` of `--ca-namespace` and authenticates
workloads by TokenReview; its names (`--service-name`, `--ca-namespace`, `--cluster-domain`) make
the serving certificates' DNS names, which the proxies check against the discovery address.
"""

from __future__ import annotations

from typing import Final

from control.install.names import Names
from control.install.values import InstallValues

XDS_PLAINTEXT_PORT: Final = 15010  # tools and tests; not in the Service
SECURE_PORT: Final = 15012  # xDS over mutual TLS: what injected proxies use
CA_PORT: Final = 15013  # the CSR API over TLS (CA_ADDR of the injected proxies)
MONITORING_PORT: Final = 15014  # /ready and /metrics (debug endpoints stay loopback-only)
WEBHOOK_PORT: Final = 15017  # the admission webhooks; the Service maps 443 to it
WEBHOOK_SERVICE_PORT: Final = 443

MESH_CONFIG_DIR: Final = "/etc/mizzen/mesh"
INJECTION_CONFIG_DIR: Final = "/etc/mizzen/inject"
# Each replica's own webhook serving certificate, issued by the mesh CA and rotated in place
# (an emptyDir: never shared, never in a Secret); the webhook reloads it when it changes.
WEBHOOK_CERT_DIR: Final = "/var/run/mizzen/webhook-tls"


def control_plane_args(values: InstallValues, mesh_key: str, injection_key: str) -> list[str]:
    """`mizzen control`'s argv after the program name, as the Deployment runs it."""
    names = Names.of(values)
    return [
        "control",
        "--kube",
        f"--revision={values.revision}",
        f"--xds-port={XDS_PLAINTEXT_PORT}",
        f"--secure-port={SECURE_PORT}",
        f"--ca-port={CA_PORT}",
        f"--debug-port={MONITORING_PORT}",
        f"--webhook-port={WEBHOOK_PORT}",
        f"--webhook-cert-dir={WEBHOOK_CERT_DIR}",
        f"--ca-namespace={names.namespace}",
        f"--service-name={names.control_plane}",
        f"--trust-domain={values.trust_domain}",
        f"--cluster-domain={values.cluster_domain}",
        f"--mesh-config={MESH_CONFIG_DIR}/{mesh_key}",
        f"--injection-config={INJECTION_CONFIG_DIR}/{injection_key}",
        f"--log-level={values.control_plane.log_level}",
    ]
