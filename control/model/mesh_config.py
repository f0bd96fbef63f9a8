"""Mesh-wide settings (a subset of Istio's MeshConfig), read once at the edge and passed down."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from control.model.mesh_telemetry import MeshTelemetry


class OutboundMode(StrEnum):
    ALLOW_ANY = "ALLOW_ANY"  # unknown destinations pass through (Istio's default)
    REGISTRY_ONLY = "REGISTRY_ONLY"  # only services and ServiceEntries are reachable


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class OutboundTrafficPolicy(_Model):
    mode: OutboundMode = OutboundMode.ALLOW_ANY


class MeshConfig(MeshTelemetry):
    """On disk: Istio's MeshConfig YAML (camelCase); unknown keys are refused, so typos show.
    The telemetry keys (access logs, tracing, providers) come from `MeshTelemetry`."""

    outbound_traffic_policy: OutboundTrafficPolicy = Field(default_factory=OutboundTrafficPolicy)
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    # A Sidecar without a workload selector here is the mesh-wide default (Istio's root namespace).
    root_namespace: str = "istio-system"

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> MeshConfig:
        """From a parsed YAML document (None, for an empty file, gives the defaults)."""
        return cls.model_validate(data or {})
