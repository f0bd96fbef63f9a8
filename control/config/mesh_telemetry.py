"""The telemetry part of Istio's MeshConfig: access logs, tracing, metrics providers, merging.

Istio's keys, so an Istio user's `meshConfig` works unchanged:

    accessLogFile: /dev/stdout          # empty: no access log
    accessLogEncoding: TEXT             # or JSON
    accessLogFormat: ""                 # empty: Istio's default format for the encoding
    enableTracing: true
    defaultConfig: {tracing: {sampling: 100}}
    extensionProviders:
    - {name: otel, opentelemetry: {service: otel.obs.svc.cluster.local, port: 4317}}
    defaultProviders: {tracing: [otel], metrics: [prometheus]}
    enablePrometheusMerge: true
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from control.config.mesh_extensions import (
    DefaultProxyConfig,
    ExtensionProvider,
    OpenTelemetryProvider,
)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class AccessLogEncoding(StrEnum):
    TEXT = "TEXT"
    JSON = "JSON"


class DefaultProviders(_Model):
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True
    )
    tracing: tuple[str, ...] = ()
    # Istio's default: the standard metrics for Prometheus. `metrics: []` turns them off.
    metrics: tuple[str, ...] = ("prometheus",)
    access_logging: tuple[str, ...] = ()


class MeshTelemetry(_Model):
    """The telemetry keys of MeshConfig, flattened into it (see `MeshConfig`)."""

    access_log_file: str = Field(default="", max_length=4096)
    access_log_encoding: AccessLogEncoding = AccessLogEncoding.TEXT
    access_log_format: str = Field(default="", max_length=16384)
    enable_tracing: bool = False
    default_config: DefaultProxyConfig = Field(default_factory=DefaultProxyConfig)
    extension_providers: tuple[ExtensionProvider, ...] = ()
    default_providers: DefaultProviders = Field(default_factory=DefaultProviders)
    enable_prometheus_merge: bool = True

    @model_validator(mode="after")
    def _providers_exist(self) -> MeshTelemetry:
        names = [p.name for p in self.extension_providers]
        if len(set(names)) != len(names):
            raise ValueError("extensionProviders: names must be unique")
        if self.access_log_encoding is AccessLogEncoding.JSON and self.access_log_format:
            try:
                data = json.loads(self.access_log_format)
            except ValueError:
                data = None
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise ValueError(
                    "accessLogFormat: with accessLogEncoding JSON it must be a JSON object "
                    "of strings (key -> command operators)"
                )
        known = set(names) | {"prometheus"}  # Istio's built-in metrics provider
        for kind, wanted in (
            ("tracing", self.default_providers.tracing),
            ("metrics", self.default_providers.metrics),
        ):
            for name in wanted:
                if name not in known:
                    raise ValueError(f"defaultProviders.{kind}: no extensionProvider {name!r}")
        return self

    def tracing_provider(self) -> OpenTelemetryProvider | None:
        """The OpenTelemetry collector spans go to: the default tracing provider, else (with
        `enableTracing`) the only OpenTelemetry provider; None: no tracing."""
        by_name = {p.name: p for p in self.extension_providers}
        for name in self.default_providers.tracing:
            provider = by_name.get(name)
            if provider is not None and provider.opentelemetry is not None:
                return provider.opentelemetry
        if self.enable_tracing:
            otel = [p.opentelemetry for p in self.extension_providers if p.opentelemetry]
            if len(otel) == 1:
                return otel[0]
        return None

    @property
    def metrics_enabled(self) -> bool:
        return bool(self.default_providers.metrics)
