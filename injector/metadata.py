"""Labels and annotations written on injected pods, and the status annotation that records them.

The status annotation (`sidecar.mizzen.io/status`) lists everything the injector added, so a pod
injected before can be un-injected and rendered again: injecting an injected pod is a fixed point.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from injector import contract
from injector.model import InjectionError
from injector.pod import canonical_json

_LABEL_VALUE_RE: Final = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Status:
    """What one injection added (the JSON of the status annotation)."""

    init_containers: tuple[str, ...]
    containers: tuple[str, ...]
    volumes: tuple[str, ...]
    revision: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return canonical_json(
            {
                "initContainers": list(self.init_containers),
                "containers": list(self.containers),
                "volumes": list(self.volumes),
                "revision": self.revision,
                "labels": dict(self.labels),
                "annotations": dict(self.annotations),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Status:
        """Parses a status annotation; raises `InjectionError` naming it when it is not ours."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        try:
            if not isinstance(data, dict):
                raise TypeError
            return cls(
                init_containers=_names(data.get("initContainers")),
                containers=_names(data.get("containers")),
                volumes=_names(data.get("volumes")),
                revision=str(data.get("revision", "")),
                labels=_strings(data.get("labels")),
                annotations=_strings(data.get("annotations")),
            )
        except TypeError:
            raise InjectionError(
                contract.STATUS_ANNOTATION,
                "is not the status mizzen writes; remove it to re-inject",
            ) from None


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError
    return tuple(value)


def _strings(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError
    return dict(value)


def _label_value(text: str) -> str | None:
    """`text` cut to a valid label value (63 characters, alphanumeric at both ends)."""
    value = text[:63].strip("-_.")
    return value if value and _LABEL_VALUE_RE.fullmatch(value) else None


def canonical_labels(labels: Mapping[str, str], workload: str | None) -> dict[str, str]:
    """Istio's labels that are missing: canonical name and revision, and the tlsMode."""
    added: dict[str, str] = {}
    if contract.CANONICAL_NAME_LABEL not in labels:
        name = labels.get("app.kubernetes.io/name") or labels.get("app") or workload
        value = _label_value(name) if name else None
        if value:
            added[contract.CANONICAL_NAME_LABEL] = value
    if contract.CANONICAL_REVISION_LABEL not in labels:
        revision = labels.get("app.kubernetes.io/version") or labels.get("version") or "latest"
        added[contract.CANONICAL_REVISION_LABEL] = _label_value(revision) or "latest"
    if contract.TLS_MODE_LABEL not in labels:
        added[contract.TLS_MODE_LABEL] = contract.TLS_MODE_ISTIO
    return added


def without_recorded(current: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
    """`current` minus the entries the injector added and nobody changed since."""
    return {key: value for key, value in current.items() if recorded.get(key) != value}
