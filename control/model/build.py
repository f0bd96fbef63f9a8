"""Documents in, MeshState out: the one place that decides what a Kubernetes document means to
the mesh. Pure, so every source (file, Kubernetes) and every test builds state the same way.

Namespaces, Services and Pods of the core group, and the mesh's kinds (validated by `control.api`)
are read; other kinds are ignored; a broken document becomes a ConfigProblem and is skipped, so
one typo never takes the rest of the configuration down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from control.api import kinds
from control.api.registry import MeshResource
from control.api.validate import inspect_resource
from control.model.endpoints import service_endpoints
from control.model.kube import (
    DEFAULT_NAMESPACE,
    Namespace,
    ObjectError,
    Service,
    Workload,
    parse_namespace,
    parse_pod,
    parse_service,
)
from control.model.mesh_config import MeshConfig
from control.model.state import ConfigProblem, Document, MeshState

_CORE_KINDS = ("Namespace", "Service", "Pod")


class _Builder:
    def __init__(self) -> None:
        self.namespaces: dict[str, Namespace] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.workloads: dict[tuple[str, str], Workload] = {}
        self.mesh: dict[tuple[str, str, str], MeshResource[Any]] = {}
        self.problems: list[ConfigProblem] = []
        self.seen: dict[tuple[str, str, str], str] = {}

    def problem(self, origin: str, kind: str, name: str, message: str, **kw: str) -> None:
        self.problems.append(ConfigProblem(origin, kind, name, message, **kw))

    def add(self, document: Document) -> None:
        obj = document.obj
        if obj is None:
            return  # an empty document (a trailing `---`)
        if not isinstance(obj, Mapping):
            self.problem(document.origin, "", "", "a document must be a mapping")
            return
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(kind, str) or not isinstance(api_version, str):
            self.problem(document.origin, "", "", "apiVersion and kind are required strings")
            return
        if kind.endswith("List") and isinstance(obj.get("items"), list):
            for index, item in enumerate(obj["items"]):
                self.add(Document(f"{document.origin}.items[{index}]", item))
            return
        if api_version == "v1" and kind in _CORE_KINDS:
            self._add_core(document.origin, kind, obj)
        elif kinds.is_mesh_group(api_version):
            self._add_mesh(document.origin, obj)

    def _name(self, obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        return name if isinstance(name, str) else ""

    def _claim(self, origin: str, kind: str, namespace: str, name: str) -> bool:
        """First writer wins (sources hand documents over in a stable order)."""
        key = (kind, namespace, name)
        if key in self.seen:
            message = f"duplicate of {kind} {namespace}/{name} from {self.seen[key]}; skipped"
            self.problem(origin, kind, name, message)
            return False
        self.seen[key] = origin
        return True

    def _add_core(self, origin: str, kind: str, obj: Mapping[str, Any]) -> None:
        try:
            if kind == "Namespace":
                namespace = parse_namespace(obj)
                if self._claim(origin, kind, "", namespace.name):
                    self.namespaces[namespace.name] = namespace
            elif kind == "Service":
                service = parse_service(obj)
                if self._claim(origin, kind, *service.key):
                    self.services[service.key] = service
            else:
                pod = parse_pod(obj)
                if self._claim(origin, kind, *pod.key):
                    self.workloads[pod.key] = pod
        except ObjectError as error:
            self.problem(origin, kind, self._name(obj), str(error))

    def _add_mesh(self, origin: str, obj: Mapping[str, Any]) -> None:
        report, resource = inspect_resource(obj)
        kind = obj.get("kind")
        name = self._name(obj)
        if resource is None or not report.ok:
            self.problem(origin, str(kind), name, str(report))
            return
        if resource.namespace is None:
            resource = dataclasses.replace(resource, namespace=DEFAULT_NAMESPACE)
        namespace = resource.namespace or DEFAULT_NAMESPACE
        for warning in report.warnings:
            self.problem(origin, resource.kind, name, warning, severity="warning")
        if self._claim(origin, resource.kind, namespace, resource.name):
            self.mesh[(resource.kind, namespace, resource.name)] = resource

    def state(self, mesh: MeshConfig) -> MeshState:
        services = dict(sorted(self.services.items()))
        workloads = dict(sorted(self.workloads.items()))
        by_namespace: dict[str, list[Workload]] = {}
        for workload in workloads.values():
            by_namespace.setdefault(workload.namespace, []).append(workload)
        endpoints = {
            key: service_endpoints(service, by_namespace.get(service.namespace, ()))
            for key, service in services.items()
        }
        by_kind: dict[str, list[MeshResource[Any]]] = {}
        for key in sorted(self.mesh):
            by_kind.setdefault(key[0], []).append(self.mesh[key])
        routing = ("ServiceEntry", "VirtualService", "DestinationRule")
        other = [r for kind, rs in sorted(by_kind.items()) if kind not in routing for r in rs]
        return MeshState(
            namespaces=_readonly(dict(sorted(self.namespaces.items()))),
            services=_readonly(services),
            workloads=_readonly(workloads),
            endpoints=_readonly({k: _readonly(v) for k, v in endpoints.items()}),
            service_entries=tuple(by_kind.get("ServiceEntry", ())),
            virtual_services=tuple(by_kind.get("VirtualService", ())),
            destination_rules=tuple(by_kind.get("DestinationRule", ())),
            other_config=tuple(other),
            mesh=mesh,
            problems=tuple(self.problems),
        )


def _readonly(mapping: dict[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(mapping)


def build_state(documents: Iterable[Document], mesh: MeshConfig | None = None) -> MeshState:
    """The mesh state the documents describe; problems are collected, never raised."""
    builder = _Builder()
    for document in documents:
        builder.add(document)
    return builder.state(mesh or MeshConfig())
