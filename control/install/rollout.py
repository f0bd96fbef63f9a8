"""Is a Deployment's rollout done? The rules `kubectl rollout status` applies, as a pure function
of the object the API server returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rollout:
    done: bool
    failed: bool
    message: str


def _int(mapping: dict[str, Any], key: str) -> int:
    value = mapping.get(key)
    return value if isinstance(value, int) else 0


def rollout_of(deployment: dict[str, Any]) -> Rollout:
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = metadata.get("name", "?")
    generation = _int(metadata, "generation")
    if _int(status, "observedGeneration") < generation:
        return Rollout(False, False, f"{name}: waiting for the new spec to be observed")
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("reason") == "ProgressDeadlineExceeded":
            return Rollout(False, True, f"{name}: exceeded its progress deadline")
    wanted = spec.get("replicas", 1) if isinstance(spec.get("replicas", 1), int) else 1
    updated = _int(status, "updatedReplicas")
    if updated < wanted:
        return Rollout(False, False, f"{name}: {updated} of {wanted} new replicas updated")
    if _int(status, "replicas") > updated:
        old = _int(status, "replicas") - updated
        return Rollout(False, False, f"{name}: {old} old replicas pending termination")
    available = _int(status, "availableReplicas")
    if available < updated:
        return Rollout(False, False, f"{name}: {available} of {updated} updated replicas available")
    return Rollout(True, False, f"{name}: {available} of {wanted} replicas ready")
