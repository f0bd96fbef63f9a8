"""The mesh's injection settings: a frozen model, loaded once at the edge (CLI, webhook start-up).

On disk it is a flat YAML mapping of camelCase keys, every key optional.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from injector.quantity import parse_quantity

DEFAULT_IMAGE = "ghcr.io/mizzen-mesh/mizzen:0.1.0"
# A container image reference (registry[:port]/path[:tag][@digest]), conservatively.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_RE: Final = re.compile(
    rf"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{{1,5}})?/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


def is_image_reference(text: str) -> bool:
    return len(text) <= 512 and _IMAGE_RE.fullmatch(text) is not None


def _image(text: str) -> str:
    if not is_image_reference(text):
        raise ValueError(f"{text!r} is not an image reference")
    return text


def _quantity(text: str) -> str:
    """A default proxy resource: a Kubernetes quantity, or empty for none."""
    if text:
        parse_quantity(text)  # raises ValueError with a readable message
    return text


Image = Annotated[str, AfterValidator(_image)]
Quantity = Annotated[str, AfterValidator(_quantity)]
# The owner match of the redirect and the containers' runAsUser/runAsGroup.
PosixId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class InjectionConfig(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    proxy_image: Image = DEFAULT_IMAGE
    # The root, NET_ADMIN init container always runs this image; no annotation can change it.
    init_image: Image = DEFAULT_IMAGE
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    discovery_address: str = "mizzen.mizzen-system.svc:15012"
    # The CA's CSR API (`CA_ADDR` in the proxy); "" leaves it out (the agent then asks the
    # discovery address). A `proxyMetadata.CA_ADDR` of the pod wins, as in Istio.
    ca_address: str = "mizzen.mizzen-system.svc:15013"
    trust_domain: str = "cluster.local"
    # The DNS suffix of Services (`<svc>.<ns>.svc.<cluster_domain>`).
    cluster_domain: str = "cluster.local"
    native_sidecar: bool = True
    # `proxyUID` as the issue and Istio spell it; `proxyUid` as the camelCase rule would.
    proxy_uid: PosixId = Field(
        1337, validation_alias=AliasChoices("proxyUID", "proxyUid", "proxy_uid")
    )
    proxy_gid: PosixId = Field(
        1337, validation_alias=AliasChoices("proxyGID", "proxyGid", "proxy_gid")
    )
    revision: str = "default"
    mesh_namespace: str = "mizzen-system"
    # The audience of the projected service-account token the agent presents to the CA.
    token_audience: str = "mizzen-ca"  # noqa: S105 (an audience, not a secret)
    root_cert_config_map: str = "mizzen-ca-root-cert"
    hold_application_until_proxy_starts: bool = False
    rewrite_app_http_probers: bool = True
    # Istio's MeshConfig key: point prometheus.io/* at the agent's merged metrics (15020).
    enable_prometheus_merge: bool = True
    proxy_cpu: Quantity = "100m"
    proxy_memory: Quantity = "128Mi"
    proxy_cpu_limit: Quantity = "2000m"
    proxy_memory_limit: Quantity = "1024Mi"

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> InjectionConfig:
        """From a parsed YAML document (None, for an empty file, gives the defaults)."""
        return cls.model_validate(data or {})
