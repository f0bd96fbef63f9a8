"""Documents in, MeshState out: the one place that decides what a Kubernetes document means to
the mesh. Pure, so every source (file, Kubernetes) and every test builds state the same way.

Namespaces, Services and Pods of the core group, EndpointSlices (the endpoints of Services
without a selector), and the mesh's kinds (validated by `control.api`) are read; other kinds are
ignored; a broken document becomes a ConfigProblem and is skipped, so one typo never takes the
rest of the configuration down.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast

from control.api import kinds
from control.api.registry import MeshResource
from control.api.report import ValidationReport
from control.api.validate import inspect_resource
from control.config.loader import list_items
from control.config.mesh_config import MeshConfig
from control.plane.memo import IdentityMemo
from control.plane.model.endpoint_slices import (
    EndpointSlice,
    parse_endpoint_slice,
    slice_endpoints,
)
from control.plane.model.endpoints import service_endpoints
from control.plane.model.kube_objects import (
    DEFAULT_NAMESPACE,
    Namespace,
    ObjectError,
    Service,
    Workload,
    parse_namespace,
    parse_pod,
    parse_service,
)
from control.plane.model.state import ConfigProblem, Document, MeshState
from control.plane.model.unsupported import unsupported, warnings

_CORE_KINDS = ("Namespace", "Service", "Pod")
_SLICE_API = ("discovery.k8s.io/v1", "EndpointSlice")


class BuildCache:
    """Parsed documents and derived endpoints of the previous build, reused by the next one
    when the very same objects come again (a source re-reads only what changed, so most
    documents are the same objects): a change to one file re-validates only that file.
    Pass the same instance to successive `build_state` calls of one source."""

    def __init__(self) -> None:
        self.parsed: IdentityMemo[Mapping[str, Any], object] = IdentityMemo()
        # Service key -> (the Service, the inputs its endpoints came from, the endpoints)
        self.endpoints: dict[tuple[str, str], tuple[Service, tuple[object, ...], Any]] = {}

    def parse(self, obj: Mapping[str, Any], parse: Callable[[], object]) -> object:
        return self.parsed.get(obj, parse)

    def finish(self, services: Iterable[tuple[str, str]]) -> None:
        """Keep only what this build used."""
        self.parsed.next_round()
        self.endpoints = {k: self.endpoints[k] for k in services if k in self.endpoints}


ObjectId = tuple[str, str, str]  # (kind, metadata.namespace or "", metadata.name)


@dataclasses.dataclass(frozen=True, slots=True)
class Judged:
    """One object of a document (a List's items one by one) and whether `build_state` would
    apply it. `key` names the object when its kind and name can be read, valid or not."""

    document: Document
    key: ObjectId | None
    ok: bool


def judge(document: Document, cache: BuildCache) -> list[Judged]:
    """What `build_state` would make of each object of `document`, decided by the same checks
    (and cached in `cache`, so the build that follows does not repeat them). Kinds the mesh
    ignores count as valid. An empty document has no objects."""
    obj = document.obj
    if obj is None:
        return []
    if not isinstance(obj, Mapping):
        return [Judged(document, None, False)]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return [Judged(document, None, False)]
    items = list_items(obj)
    if items is not None:
        unrolled = [Document(f"{document.origin}.items[{i}]", o) for i, o in enumerate(items)]
        return [judged for item in unrolled for judged in judge(item, cache)]
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name, namespace = metadata.get("name"), metadata.get("namespace") or ""
    key = (kind, namespace, name) if isinstance(name, str) and isinstance(namespace, str) else None
    if (api_version == "v1" and kind in _CORE_KINDS) or (api_version, kind) == _SLICE_API:
        ok = not isinstance(cache.parse(obj, lambda: _parse_core(kind, obj)), ObjectError)
    elif kinds.is_mesh_group(api_version):
        inspected = cache.parse(obj, lambda: inspect_resource(obj))
        report, resource = cast(tuple[ValidationReport, MeshResource[Any] | None], inspected)
        ok = resource is not None and report.ok
    else:
        ok = True  # not read by the mesh
    return [Judged(document, key, ok)]


def _parse_core(kind: str, obj: Mapping[str, Any]) -> object:
    try:
        if kind == "Namespace":
            return parse_namespace(obj)
        if kind == "Service":
            return parse_service(obj)
        if kind == "EndpointSlice":
            return parse_endpoint_slice(obj)
        return parse_pod(obj)
    except ObjectError as error:
        return error


class _Builder:
    def __init__(self, cache: BuildCache, reads_secrets: bool = False) -> None:
        self.cache = cache
        self.reads_secrets = reads_secrets
        self.namespaces: dict[str, Namespace] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.workloads: dict[tuple[str, str], Workload] = {}
        self.slices: dict[tuple[str, str], EndpointSlice] = {}
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
        items = list_items(obj)
        if items is not None:
            for index, item in enumerate(items):
                self.add(Document(f"{document.origin}.items[{index}]", item))
            return
        if (api_version == "v1" and kind in _CORE_KINDS) or (api_version, kind) == _SLICE_API:
            self._add_core(document.origin, kind, obj)
        elif kinds.is_mesh_group(api_version, kind):
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
        parsed = self.cache.parse(obj, lambda: _parse_core(kind, obj))
        if isinstance(parsed, ObjectError):
            self.problem(origin, kind, self._name(obj), str(parsed))
        elif isinstance(parsed, Namespace):
            if self._claim(origin, kind, "", parsed.name):
                self.namespaces[parsed.name] = parsed
        elif isinstance(parsed, Service):
            if self._claim(origin, kind, *parsed.key):
                self.services[parsed.key] = parsed
        elif isinstance(parsed, EndpointSlice):
            if self._claim(origin, kind, *parsed.key):
                self.slices[parsed.key] = parsed
        elif isinstance(parsed, Workload) and self._claim(origin, kind, *parsed.key):
            self.workloads[parsed.key] = parsed

    def _add_mesh(self, origin: str, obj: Mapping[str, Any]) -> None:
        inspected = self.cache.parse(obj, lambda: inspect_resource(obj))
        report, resource = cast(tuple[ValidationReport, MeshResource[Any] | None], inspected)
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
        for note in warnings(resource, self.reads_secrets):
            self.problem(origin, resource.kind, name, note, severity="warning")
        refusal = unsupported(resource)
        if refusal is not None:
            self.problem(origin, resource.kind, name, refusal)
            return
        if self._claim(origin, resource.kind, namespace, resource.name):
            self.mesh[(resource.kind, namespace, resource.name)] = resource

    def _endpoints(
        self,
        service: Service,
        pods: tuple[Workload, ...],
        slices: Mapping[tuple[str, str], tuple[EndpointSlice, ...]],
    ) -> Any:
        """From the selected pods, or from the slices when the Service has no selector; derived
        again only when the Service or one of those inputs changed."""
        inputs: tuple[object, ...] = pods
        if not service.selector:
            inputs = (*slices.get(service.key, ()), *pods)
        found = self.cache.endpoints.get(service.key)
        if found is not None and found[0] == service and found[1] == inputs:
            return found[2]
        if service.selector:
            result = service_endpoints(service, pods)
        else:
            named = {pod.name: pod for pod in pods}
            result = slice_endpoints(service, slices.get(service.key, ()), named)
        self.cache.endpoints[service.key] = (service, inputs, result)
        return result

    def state(self, mesh: MeshConfig) -> MeshState:
        services = dict(sorted(self.services.items()))
        workloads = dict(sorted(self.workloads.items()))
        by_namespace: dict[str, list[Workload]] = {}
        for workload in workloads.values():
            by_namespace.setdefault(workload.namespace, []).append(workload)
        slices: dict[tuple[str, str], list[EndpointSlice]] = {}
        for _, endpoint_slice in sorted(self.slices.items()):
            if endpoint_slice.service is not None:
                owner = (endpoint_slice.namespace, endpoint_slice.service)
                slices.setdefault(owner, []).append(endpoint_slice)
        by_service = {owner: tuple(found) for owner, found in slices.items()}
        endpoints = {
            key: self._endpoints(
                service, tuple(by_namespace.get(service.namespace, ())), by_service
            )
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
            reads_secrets=self.reads_secrets,
        )


def _readonly(mapping: dict[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(mapping)


def build_state(
    documents: Iterable[Document],
    mesh: MeshConfig | None = None,
    cache: BuildCache | None = None,
    *,
    reads_secrets: bool = False,
) -> MeshState:
    """The mesh state the documents describe; problems are collected, never raised.
    `reads_secrets`: the source serves DestinationRule `credentialName`s (`--kube`)."""
    builder = _Builder(cache or BuildCache(), reads_secrets)
    for document in documents:
        builder.add(document)
    state = builder.state(mesh or MeshConfig())
    builder.cache.finish(state.services)
    return state
