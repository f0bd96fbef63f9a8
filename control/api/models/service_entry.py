"""ServiceEntry (networking.istio.io): adds a service (often outside the mesh) to the registry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.api.models.base import ApiModel, Labels, Str, UInt, WorkloadSelector


class ServicePort(ApiModel):
    number: UInt | None = None
    protocol: Str | None = None
    name: Str | None = None
    target_port: UInt | None = None


class WorkloadEntry(ApiModel):
    """An endpoint of the service: an address (IP, hostname or unix socket) and its ports."""

    address: Str | None = None
    ports: dict[Str, UInt] = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)
    network: Str | None = None
    locality: Str | None = None
    weight: UInt | None = None
    service_account: Str | None = None


class ServiceEntry(ApiModel):
    """The spec of a ServiceEntry."""

    hosts: tuple[Str, ...] = ()
    addresses: tuple[Str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] | None = None
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] | None = None
    """DYNAMIC_DNS (Envoy's dynamic forward proxy) is accepted and not served yet."""
    endpoints: tuple[WorkloadEntry, ...] = ()
    workload_selector: WorkloadSelector | None = None
    export_to: tuple[Str, ...] = ()
    subject_alt_names: tuple[Str, ...] = ()
