"""Which AuthorizationPolicies and RequestAuthentications apply to a workload (Istio's
selection): a policy in the mesh's root namespace applies to every workload its selector
matches, in any namespace (all of them without a selector); elsewhere, to the workloads of its
own namespace that its selector matches (all of them without one). Policies bound with
`targetRef(s)` are for gateways and waypoints, which mizzen does not run: they are refused when
the state is built (`control.plane.model.build`) and never reach here."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from control.api.models.base import LabelSelector
from control.api.models.security import AuthorizationPolicy, RequestAuthentication
from control.api.registry import MeshResource

DRY_RUN_ANNOTATION: Final = "istio.io/dry-run"
SpecT = TypeVar("SpecT", AuthorizationPolicy, RequestAuthentication)


@dataclass(frozen=True, slots=True)
class Selected(Generic[SpecT]):
    """One applying policy. Equality and hashing go by identity and content (`fingerprint`),
    so proxies under equal policies share one translation and any edit re-translates."""

    namespace: str
    name: str
    fingerprint: str
    dry_run: bool = False
    spec: SpecT | None = field(default=None, compare=False, hash=False)

    @property
    def body(self) -> SpecT:
        assert self.spec is not None
        return self.spec


def selector_matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    if selector is None or not selector.match_labels:
        return True
    return all(labels.get(k) == v for k, v in selector.match_labels.items())


def is_dry_run(annotations: Mapping[str, str]) -> bool:
    """Istio parses the annotation as a Go bool; anything else is not dry-run."""
    value = annotations.get(DRY_RUN_ANNOTATION, "").strip()
    return value in {"1", "t", "T", "TRUE", "true", "True"}


# id(spec) -> (a weak reference to it, its fingerprint); an entry leaves with its spec.
_FINGERPRINTS: dict[int, tuple[weakref.ref[Any], str]] = {}


def _forget_fingerprint(key: int) -> Callable[[weakref.ref[Any]], None]:
    def forget(ref: weakref.ref[Any]) -> None:
        found = _FINGERPRINTS.get(key)
        if found is not None and found[0] is ref:
            del _FINGERPRINTS[key]

    return forget


def _fingerprint(resource: MeshResource[Any]) -> str:
    """The spec's content in the fields the user set (pydantic's serializer: stable for one
    spec; equal specs written in another map order differ, costing only sharing). Computed
    once per parsed spec (a frozen model): a state build reuses the specs of the documents
    that did not change (`BuildCache`), so a new state fingerprints only what changed."""
    spec = resource.spec
    key = id(spec)
    found = _FINGERPRINTS.get(key)
    if found is not None and found[0]() is spec:
        return found[1]
    fingerprint: str = spec.model_dump_json(exclude_unset=True)
    _FINGERPRINTS[key] = (weakref.ref(spec, _forget_fingerprint(key)), fingerprint)
    return fingerprint


class PolicyIndex(Generic[SpecT]):
    """The policies of one kind in one state, by namespace, each fingerprinted once."""

    def __init__(self, resources: Iterable[MeshResource[SpecT]], root_namespace: str) -> None:
        self.root_namespace = root_namespace
        self.by_namespace: dict[str, list[Selected[SpecT]]] = {}
        self._selectors: dict[tuple[str, str], LabelSelector | None] = {}
        for resource in resources:
            namespace = resource.namespace or "default"
            selected = Selected(
                namespace, resource.name, _fingerprint(resource),
                is_dry_run(resource.annotations), resource.spec,
            )  # fmt: skip
            self.by_namespace.setdefault(namespace, []).append(selected)
            self._selectors[(namespace, resource.name)] = resource.spec.selector
        for found in self.by_namespace.values():
            found.sort(key=lambda s: s.name)

    def applying(self, namespace: str, labels: Mapping[str, str]) -> tuple[Selected[SpecT], ...]:
        """Root namespace first, then the workload's own; by name within each."""
        namespaces = [self.root_namespace]
        if namespace != self.root_namespace:
            namespaces.append(namespace)
        return tuple(
            s
            for ns in namespaces
            for s in self.by_namespace.get(ns, ())
            if selector_matches(self._selectors[(s.namespace, s.name)], labels)
        )
