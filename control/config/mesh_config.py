"""Mesh-wide settings (a subset of Istio's MeshConfig), read once at the edge and passed down.

The one model of the mesh's settings: whatever else needs the trust domain or the cluster domain
(the injection settings, say) is derived from it where the process is assembled, never set
twice."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from control.api.duration import Duration
from control.config.settings import SettingsFileError, read_mapping


class OutboundMode(StrEnum):
    ALLOW_ANY = "ALLOW_ANY"  # unknown destinations pass through (Istio's default)
    REGISTRY_ONLY = "REGISTRY_ONLY"  # only services and ServiceEntries are reachable


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class OutboundTrafficPolicy(_Model):
    mode: OutboundMode = OutboundMode.ALLOW_ANY


class PathNormalization(_Model):
    """How the HTTP connection manager normalises request paths before routing and policy."""

    normalization: Literal[
        "DEFAULT", "BASE", "NONE", "MERGE_SLASHES", "DECODE_AND_MERGE_SLASHES"
    ] = "DEFAULT"  # DEFAULT is BASE


class EnvoyExtAuthzHttp(_Model):
    service: str
    port: int = Field(ge=1, le=65535)
    timeout: Duration | None = None
    path_prefix: str | None = None
    fail_open: bool = False
    status_on_error: Annotated[int, Field(ge=100, le=599)] | None = None
    include_request_headers_in_check: tuple[str, ...] = ()
    headers_to_upstream_on_allow: tuple[str, ...] = ()
    headers_to_downstream_on_deny: tuple[str, ...] = ()


class EnvoyExtAuthzGrpc(_Model):
    service: str
    port: int = Field(ge=1, le=65535)
    timeout: Duration | None = None
    fail_open: bool = False
    status_on_error: Annotated[int, Field(ge=100, le=599)] | None = None


class ExtensionProvider(_Model):
    """A CUSTOM AuthorizationPolicy's `provider.name` names one of these."""

    name: str
    envoy_ext_authz_http: EnvoyExtAuthzHttp | None = None
    envoy_ext_authz_grpc: EnvoyExtAuthzGrpc | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ExtensionProvider:
        if (self.envoy_ext_authz_http is None) == (self.envoy_ext_authz_grpc is None):
            raise ValueError(
                f"extension provider {self.name!r}: set exactly one of envoyExtAuthzHttp or "
                "envoyExtAuthzGrpc (other kinds are not supported)"
            )
        return self


class GatewayTopology(_Model):
    num_trusted_proxies: int = Field(default=0, ge=0, le=64)


class ProxyDefaults(_Model):
    """MeshConfig `defaultConfig` (only what mizzen reads)."""

    gateway_topology: GatewayTopology = Field(default_factory=GatewayTopology)


class MeshConfig(_Model):
    """On disk: Istio's MeshConfig YAML (camelCase); unknown keys are refused, so typos show."""

    outbound_traffic_policy: OutboundTrafficPolicy = Field(default_factory=OutboundTrafficPolicy)
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    # A Sidecar without a workload selector here is the mesh-wide default (Istio's root namespace).
    root_namespace: str = "istio-system"
    # Policy (issue 13): see control/xds/translate/authz/.
    trust_domain_aliases: tuple[str, ...] = ()
    path_normalization: PathNormalization = Field(default_factory=PathNormalization)
    extension_providers: tuple[ExtensionProvider, ...] = ()
    default_config: ProxyDefaults = Field(default_factory=ProxyDefaults)

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> MeshConfig:
        """From a parsed YAML document (None, for an empty file, gives the defaults)."""
        return cls.model_validate(data or {})


def load_mesh_config(path: Path | None, flag: str = "--mesh-config") -> MeshConfig:
    """The mesh config of a file (the defaults without one). Raises SettingsFileError naming the
    flag, the file and every field in error."""
    if path is None:
        return MeshConfig()
    data = read_mapping(path, flag)
    try:
        return MeshConfig.from_mapping(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SettingsFileError(f"{flag} {path}: {problems}") from None
