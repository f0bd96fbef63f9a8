"""Mesh-wide settings (a subset of Istio's MeshConfig), read once at the edge and passed down.

The one model of the mesh's settings: whatever else needs the trust domain or the cluster domain
(the injection settings, say) is derived from it where the process is assembled, never set
twice."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from control.config.mesh_telemetry import MeshTelemetry
from control.config.settings import SettingsFileError, read_mapping

log = logging.getLogger(__name__)
_MAX_UNKNOWN = 100  # unknown keys reported one by one; past that, in a count


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


class MeshConfig(MeshTelemetry):
    """On disk: Istio's MeshConfig YAML (camelCase). `from_mapping` refuses unknown keys;
    `read_mesh_config` (what the commands use) drops them with a warning each, as an Istio
    user's file holds many keys mizzen does not read and istiod ignores them (silently).
    The telemetry keys (access logs, tracing, providers) come from `MeshTelemetry`; extension
    providers and `defaultConfig` from `mesh_extensions`."""

    outbound_traffic_policy: OutboundTrafficPolicy = Field(default_factory=OutboundTrafficPolicy)
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    # A Sidecar without a workload selector here is the mesh-wide default (Istio's root namespace).
    root_namespace: str = "istio-system"
    # Policy (issue 13): see control/xds/translate/authz/.
    trust_domain_aliases: tuple[str, ...] = ()
    path_normalization: PathNormalization = Field(default_factory=PathNormalization)
    # mTLS (issue 12): a client sends mTLS to meshed endpoints when no DestinationRule sets TLS.
    enable_auto_mtls: bool = True

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> MeshConfig:
        """From a parsed YAML document (None, for an empty file, gives the defaults)."""
        return cls.model_validate(data or {})


def _drop(data: Any, loc: Sequence[int | str]) -> bool:
    """Remove the key at `loc` (a pydantic error location) from nested dicts and lists."""
    for step in loc[:-1]:
        in_dict = isinstance(data, dict) and step in data
        in_list = isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
        if not in_dict and not in_list:
            return False
        data = data[step]
    if isinstance(data, dict) and loc and loc[-1] in data:
        del data[loc[-1]]
        return True
    return False


def read_mesh_config(data: dict[str, Any] | None) -> tuple[MeshConfig, list[str]]:
    """The mesh config of a parsed document, and a warning per unknown key (named by its path),
    which is dropped: neither ignored silently (a typo would pass unseen) nor fatal (Istio's
    files carry keys mizzen does not read). Other errors raise ValidationError."""
    data = copy.deepcopy(data or {})
    warnings: list[str] = []
    while True:
        try:
            return MeshConfig.model_validate(data), sorted(warnings)
        except ValidationError as error:
            extras = [e["loc"] for e in error.errors() if e["type"] == "extra_forbidden"]
            dropped = [loc for loc in extras if _drop(data, loc)]
            if not dropped:
                raise
            for loc in dropped:
                if len(warnings) < _MAX_UNKNOWN:
                    path = ".".join(str(step) for step in loc)[:200]
                    warnings.append(f"unknown key {path!r} ignored (mizzen does not read it)")


def load_mesh_config(path: Path | None, flag: str = "--mesh-config") -> MeshConfig:
    """The mesh config of a file (the defaults without one), each unknown key logged as a
    warning. Raises SettingsFileError naming the flag, the file and every field in error."""
    if path is None:
        return MeshConfig()
    data = read_mapping(path, flag)
    try:
        mesh, warnings = read_mesh_config(data)
        for warning in warnings:
            log.warning("%s %s: %s", flag, path, warning)
        return mesh
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SettingsFileError(f"{flag} {path}: {problems}") from None
