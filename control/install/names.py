"""The names of the installed objects. The default revision's are bare (`mizzen`), another
revision's carry it as a suffix (`mizzen-canary`), so revisions install side by side; objects
every revision shares (the namespace, the CRDs, the root-certificate ConfigMaps) keep one name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from control.install.values import InstallValues

DEFAULT_REVISION: Final = "default"
APP_LABEL: Final = "app"
APP: Final = "mizzen"
REVISION_LABEL: Final = "istio.io/rev"
# Written on everything the install and the control plane create, for uninstall and audits.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "mizzen"
# Shared by every revision: one CA per mesh, one root certificate per namespace.
ROOT_CERT_CONFIG_MAP: Final = "mizzen-ca-root-cert"
ROOT_CERT_KEY: Final = "root-cert.pem"
TOKEN_AUDIENCE: Final = "mizzen-ca"  # noqa: S105 (an audience, not a secret)
CA_SECRET: Final = "mizzen-ca"  # noqa: S105 (the Secret's name)
PLUGIN_CA_SECRET: Final = "cacerts"  # noqa: S105 (Istio's name for an operator's own CA)
# The keys of the settings in their ConfigMaps (Istio's: `mesh` in `istio`, `config` in
# `istio-sidecar-injector`).
MESH_CONFIG_KEY: Final = "mesh"
INJECTION_CONFIG_KEY: Final = "config"


@dataclass(frozen=True, slots=True)
class Names:
    namespace: str
    revision: str

    @classmethod
    def of(cls, values: InstallValues) -> Names:
        return cls(values.namespace, values.revision)

    def revisioned(self, base: str) -> str:
        return base if self.revision == DEFAULT_REVISION else f"{base}-{self.revision}"

    @property
    def control_plane(self) -> str:
        """The Deployment, its Service, ServiceAccount and PodDisruptionBudget."""
        return self.revisioned("mizzen")

    @property
    def cluster_role(self) -> str:
        return self.revisioned("mizzen-control")

    @property
    def role(self) -> str:
        return self.revisioned("mizzen-control")

    @property
    def mesh_config(self) -> str:
        return self.revisioned("mizzen-mesh")

    @property
    def injection_config(self) -> str:
        return self.revisioned("mizzen-sidecar-injector")

    @property
    def mutating_webhook(self) -> str:
        return self.revisioned("mizzen-sidecar-injector")

    @property
    def validating_webhook(self) -> str:
        return self.revisioned("mizzen-validator")

    @property
    def lease(self) -> str:
        """The Lease whose holder runs the singleton duties of this revision."""
        return self.revisioned("mizzen-leader")

    @property
    def selector(self) -> dict[str, str]:
        """The labels that pick this revision's control-plane pods."""
        return {APP_LABEL: APP, REVISION_LABEL: self.revision}

    def discovery_address(self, port: int) -> str:
        return f"{self.control_plane}.{self.namespace}.svc:{port}"


def service_dns_names(service: str, namespace: str, cluster_domain: str) -> tuple[str, ...]:
    """The names clients may use for a Service: what its serving certificates must carry."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    )
