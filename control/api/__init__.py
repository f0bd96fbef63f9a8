"""The mesh API: pydantic models of the Istio CRDs and their semantic validation (pure).

Entry points: `validate_resource` (a report for one object: the webhook's `/validate`),
`parse_resource` / `inspect_resource` (the typed `MeshResource` for the control plane), and
`is_mesh_kind`. The spec models live in `control.api.models`; durations in `control.api.duration`.
"""

from control.api.kinds import is_mesh_group, is_mesh_kind
from control.api.models.destination_rule import DestinationRule
from control.api.models.security import (
    AuthorizationPolicy,
    PeerAuthentication,
    RequestAuthentication,
)
from control.api.models.service_entry import ServiceEntry
from control.api.models.sidecar import Sidecar
from control.api.models.virtual_service import VirtualService
from control.api.registry import MeshResource
from control.api.report import FieldError, ValidationReport
from control.api.validate import (
    InvalidResourceError,
    inspect_resource,
    parse_resource,
    validate_resource,
)

__all__ = [
    "AuthorizationPolicy",
    "DestinationRule",
    "FieldError",
    "InvalidResourceError",
    "MeshResource",
    "PeerAuthentication",
    "RequestAuthentication",
    "ServiceEntry",
    "Sidecar",
    "ValidationReport",
    "VirtualService",
    "inspect_resource",
    "is_mesh_group",
    "is_mesh_kind",
    "parse_resource",
    "validate_resource",
]
