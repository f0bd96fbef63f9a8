"""Loading the policy tables (cases/*.yaml) and turning a case into Kubernetes documents and a
request: shared by the Envoy test and, later, a replay through a live mesh."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES = Path(__file__).parent / "cases"


@dataclass(frozen=True)
class Case:
    name: str
    policies: tuple[dict[str, Any], ...]
    request: dict[str, Any]
    expect: int | str
    port: str = "http"
    mesh: dict[str, Any] | None = None


def load(name: str) -> list[Case]:
    data = yaml.safe_load((CASES / name).read_text())
    return [
        Case(
            c["name"],
            tuple(c["policies"]),
            dict(c["request"]),
            c["expect"],
            c.get("port", "http"),
            c.get("mesh"),
        )
        for c in data
    ]


def substitute(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def documents(case: Case, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """The case's policies as Kubernetes objects."""
    out = []
    for policy in case.policies:
        metadata: dict[str, Any] = {
            "name": policy["name"],
            "namespace": policy.get("namespace", "foo"),
        }
        if policy.get("annotations"):
            metadata["annotations"] = policy["annotations"]
        out.append({
            "apiVersion": "security.istio.io/v1",
            "kind": policy.get("kind", "AuthorizationPolicy"),
            "metadata": metadata,
            "spec": substitute(policy.get("spec", {}), names),
        })  # fmt: skip
    return out
