"""Rendering: a pod that carries no injection, plus its settings, becomes the injected pod.

Placement follows Istio. Native sidecars: `[mizzen-init, mizzen-proxy, user init containers...]`,
the proxy's startup probe holding everything after it. Otherwise: `mizzen-init` is the *last* init
container (the user's init containers must not be redirected to a proxy that is not running
yet) and the proxy the last container, or the first with holdApplicationUntilProxyStarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from injector import contract
from injector.annotations import PodSettings
from injector.config import InjectionConfig
from injector.containers import ProxyFacts, init_container, proxy_container, volumes
from injector.metadata import Status, canonical_labels
from injector.model import InjectionError
from injector.pod import Json, container_name, mappings
from injector.probes import is_native_sidecar, rewrite_probes
from injector.prometheus import merge_metrics


@dataclass(frozen=True)
class Rendered:
    metadata: Json
    spec: Json
    notes: tuple[str, ...]
    warnings: tuple[str, ...]
    # The objects the injector created (containers, volumes): new in the patch as a whole.
    fresh: tuple[object, ...] = ()


# Istio's own container names. A user container under one of them is Istio's container override
# (merged into Istio's injected container; gateways use it with `image: auto`): mizzen cannot
# merge into its own containers, and such a pod would not start (no image, or two proxies).
ISTIO_CONTAINER_NAMES: Final = {
    "istio-proxy": "Istio's proxy container",
    "istio-init": "Istio's init container",
    "istio-validation": "Istio's CNI validation container",
}


def _check_reserved(spec: Mapping[str, Any]) -> None:
    """A user's container or volume under a mesh name would give duplicate names: refuse it."""
    for key in ("initContainers", "containers"):
        for index, container in enumerate(mappings(spec, key, f"spec.{key}")):
            name = container_name(container, f"spec.{key}[{index}]")
            if name in ISTIO_CONTAINER_NAMES:
                raise InjectionError(
                    f"spec.{key}[{index}].name",
                    f"{name!r} is {ISTIO_CONTAINER_NAMES[name]}: Istio would merge this container "
                    "into its own (the container override, as gateway Deployments use with "
                    f"`image: auto`); mizzen injects {contract.PROXY_CONTAINER_NAME} and "
                    "mizzen-init instead and cannot merge, so the pod would not start: remove "
                    "or rename this container (Istio gateways are not supported)",
                )
            if name in contract.MESH_CONTAINER_NAMES:
                raise InjectionError(
                    f"spec.{key}[{index}].name",
                    f"{name!r} is reserved for the mesh's container: rename this container",
                )
    for index, volume in enumerate(mappings(spec, "volumes", "spec.volumes")):
        if volume.get("name") in contract.MESH_VOLUME_NAMES:
            raise InjectionError(
                f"spec.volumes[{index}].name",
                f"{volume.get('name')!r} is reserved for the mesh's volume: rename this volume",
            )


def _has_rewritable(container: Mapping[str, Any]) -> bool:
    lifecycle = container.get("lifecycle")
    hooks = lifecycle.values() if isinstance(lifecycle, Mapping) else ()
    probes = [container.get(field) for field in contract.PROBE_PATHS]
    return any(
        isinstance(handlers, Mapping)
        and any(handlers.get(kind) is not None for kind in ("httpGet", "tcpSocket", "grpc"))
        for handlers in (*probes, *hooks)
    )


def _pod_ports(containers: list[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    ports: list[Mapping[str, Any]] = []
    for index, container in enumerate(containers):
        ports += mappings(container, "ports", f"spec.containers[{index}].ports")
    return tuple(ports)


def render(
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    settings: PodSettings,
    config: InjectionConfig,
    workload: str | None,
) -> Rendered:
    """The injected metadata and spec (new dicts sharing unchanged subtrees with the inputs)."""
    _check_reserved(spec)
    containers = mappings(spec, "containers", "spec.containers")
    if not containers:
        raise InjectionError("spec.containers", "a pod needs at least one container")
    user_init = mappings(spec, "initContainers", "spec.initContainers")
    app_names = tuple(container_name(c, f"spec.containers[{i}]") for i, c in enumerate(containers))
    notes: list[str] = list(settings.notes)
    warnings: list[str] = list(settings.warnings)

    app_probes: Json = {}
    if settings.rewrite_probes:
        # The user's native sidecars start after the proxy only when it is native too; before
        # it, the agent is not there to answer their probes (their startup probe would never
        # pass), so they are left as written.
        native_inits = user_init if settings.native_sidecar else None
        containers, rewritten_init, app_probes, probe_warnings = rewrite_probes(
            containers, settings.status_port, native_inits
        )
        if native_inits is not None:
            user_init = rewritten_init
        elif any(is_native_sidecar(c) and _has_rewritable(c) for c in user_init):
            notes.append(
                "the pod's own native sidecars start before the proxy (not native): "
                "their probes and hooks are left as written"
            )
        warnings += probe_warnings
        notes += [
            f"{'probe' if path.startswith(contract.APP_HEALTH_PREFIX) else 'hook'} {path} "
            "now goes through the agent"
            for path in sorted(app_probes)
        ]

    merged_scrape, app_scrape = merge_metrics(annotations, config.enable_prometheus_merge)
    if merged_scrape:
        notes.append("prometheus.io/* point at the agent's merged metrics (:15020)")
    added_labels = canonical_labels(labels, workload)
    new_labels = {**labels, **added_labels}
    facts = ProxyFacts(
        workload_name=workload,
        labels=new_labels,
        app_containers=app_names,
        pod_ports=_pod_ports(containers),
        app_probes=app_probes,
        prometheus_annotations=app_scrape,
    )
    native = settings.native_sidecar
    proxy = proxy_container(settings, config, facts, native=native)
    init = [init_container(settings, config)] if settings.intercepts else []
    if native:
        new_init = [*init, proxy, *user_init]
        new_containers = list(containers)
        notes.append("mizzen-proxy is a native sidecar (init container, restartPolicy Always)")
    else:
        new_init = [*user_init, *init]
        if settings.hold_application:
            new_containers = [proxy, *containers]
            notes.append("mizzen-proxy is the first container, apps wait until it is ready")
        else:
            new_containers = [*containers, proxy]
    added_volumes = volumes(config)

    added_annotations: dict[str, str] = dict(merged_scrape)
    if contract.DEFAULT_CONTAINER_ANNOTATION not in annotations:
        added_annotations[contract.DEFAULT_CONTAINER_ANNOTATION] = app_names[0]
    status = Status(
        init_containers=tuple(c["name"] for c in (*init, proxy) if native or c is not proxy),
        containers=() if native else (contract.PROXY_CONTAINER_NAME,),
        volumes=tuple(v["name"] for v in added_volumes),
        revision=config.revision,
        labels=added_labels,
        annotations=added_annotations,
    )
    new_annotations = {
        **annotations,
        **added_annotations,
        contract.STATUS_ANNOTATION: status.to_json(),
    }
    new_spec: Json = {}
    for key, value in spec.items():
        if key == "containers" and "initContainers" not in spec and new_init:
            new_spec["initContainers"] = new_init  # where a reader expects it
        new_spec[key] = value
    if new_init or "initContainers" in spec:
        new_spec["initContainers"] = new_init
    new_spec["containers"] = new_containers
    new_spec["volumes"] = [*mappings(spec, "volumes", "spec.volumes"), *added_volumes]
    new_metadata: Json = {**metadata, "labels": new_labels, "annotations": new_annotations}
    fresh = (*init, proxy, *added_volumes)
    return Rendered(new_metadata, new_spec, tuple(notes), tuple(warnings), fresh)
