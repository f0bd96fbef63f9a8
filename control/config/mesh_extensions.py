"""MeshConfig's `extensionProviders` and `defaultConfig`: the parts several features read.

An extension provider is of one kind: `envoyExtAuthzHttp` / `envoyExtAuthzGrpc` (CUSTOM
AuthorizationPolicy), `opentelemetry` (tracing), `prometheus` (metrics). Other kinds Istio knows
(zipkin, skywalking, envoyFileAccessLog, ...) are accepted so an Istio user's file loads, and left
unused.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from control.api.duration import Duration


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


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


class OpenTelemetryProvider(_Model):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )
    service: str = Field(min_length=1, max_length=253)
    port: int = Field(ge=1, le=65535)
    max_tag_length: int = Field(default=256, ge=1, le=65536)


_KINDS = ("envoy_ext_authz_http", "envoy_ext_authz_grpc", "opentelemetry", "prometheus")


class ExtensionProvider(_Model):
    """One of MeshConfig.extensionProviders: a name and exactly one kind."""

    model_config = ConfigDict(
        frozen=True, extra="allow", alias_generator=to_camel, populate_by_name=True
    )
    name: str = Field(min_length=1, max_length=253)
    envoy_ext_authz_http: EnvoyExtAuthzHttp | None = None
    envoy_ext_authz_grpc: EnvoyExtAuthzGrpc | None = None
    opentelemetry: OpenTelemetryProvider | None = None
    prometheus: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ExtensionProvider:
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        kinds += list(self.model_extra or {})
        if len(kinds) != 1:
            raise ValueError(
                f"extension provider {self.name!r}: set exactly one kind "
                f"(envoyExtAuthzHttp, envoyExtAuthzGrpc, opentelemetry, prometheus, ...)"
            )
        return self

    @property
    def ext_authz(self) -> EnvoyExtAuthzHttp | EnvoyExtAuthzGrpc | None:
        return self.envoy_ext_authz_http or self.envoy_ext_authz_grpc


class Tracing(_Model):
    """ProxyConfig.tracing: only the sampling percentage is read (Istio's default is 1%)."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )
    sampling: float = Field(default=1.0, ge=0, le=100)


class GatewayTopology(_Model):
    num_trusted_proxies: int = Field(default=0, ge=0, le=64)


class DefaultProxyConfig(_Model):
    """MeshConfig.defaultConfig (a ProxyConfig). Its many other fields are the agent's, set per
    pod; the control plane reads `tracing` and `gatewayTopology`, and ignores the rest rather
    than refusing an Istio user's file."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )
    tracing: Tracing = Field(default_factory=Tracing)
    gateway_topology: GatewayTopology = Field(default_factory=GatewayTopology)
