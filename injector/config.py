"""The mesh's injection settings: a frozen model, loaded once at the edge (CLI, webhook start-up).

On disk it is a flat YAML mapping of camelCase keys, every key optional.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

DEFAULT_IMAGE = "ghcr.io/mizzen-mesh/mizzen:0.1.0"


class InjectionConfig(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    proxy_image: str = DEFAULT_IMAGE
    # The root, NET_ADMIN init container always runs this image; no annotation can change it.
    init_image: str = DEFAULT_IMAGE
    image_pull_policy: str = "IfNotPresent"
    discovery_address: str = "mizzen.mizzen-system.svc:15012"
    trust_domain: str = "cluster.local"
    # The DNS suffix of Services (`<svc>.<ns>.svc.<cluster_domain>`).
    cluster_domain: str = "cluster.local"
    native_sidecar: bool = True
    proxy_uid: int = 1337
    proxy_gid: int = 1337
    revision: str = "default"
    mesh_namespace: str = "mizzen-system"
    # The audience of the projected service-account token the agent presents to the CA.
    token_audience: str = "mizzen-ca"  # noqa: S105 (an audience, not a secret)
    root_cert_config_map: str = "mizzen-ca-root-cert"
    hold_application_until_proxy_starts: bool = False
    rewrite_app_http_probers: bool = True
    proxy_cpu: str = "100m"
    proxy_memory: str = "128Mi"
    proxy_cpu_limit: str = "2000m"
    proxy_memory_limit: str = "1024Mi"

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> InjectionConfig:
        """From a parsed YAML document (None, for an empty file, gives the defaults)."""
        return cls.model_validate(data or {})
