"""Rewriting the app's probes and lifecycle hooks so the kubelet asks the agent, which asks the app.

With mTLS on, the kubelet's plain probes would be refused by the proxy (or bypass it). As in
Istio, httpGet, tcpSocket and grpc probes become an httpGet on the agent's status port at
`/app-health/<container>/<livez|readyz|startupz>`, and httpGet/tcpSocket `postStart`/`preStop`
hooks an httpGet at `/app-lifecycle/<container>/<poststartz|prestopz>`; the original handlers,
named ports resolved, travel to the agent as JSON (`MIZZEN_APP_PROBES`). exec handlers run in the
app's container and stay. Istio does the same for the user's own native sidecars (init
containers with `restartPolicy: Always`), which are then listed in the app probers too.

Containers are never mutated: a changed container is a new dict sharing the unchanged fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from injector import contract
from injector.model import InjectionError
from injector.pod import Json, container_name, mappings, type_name

HANDLERS: Final = ("httpGet", "tcpSocket", "grpc", "exec")
_REWRITTEN: Final = ("httpGet", "tcpSocket", "grpc")
# Kubernetes' lifecycle handlers: exec, httpGet, tcpSocket (deprecated) and sleep.
_HOOK_HANDLERS: Final = ("httpGet", "tcpSocket", "exec", "sleep")
_HOOKS_REWRITTEN: Final = ("httpGet", "tcpSocket")


def _handler(probe: Mapping[str, Any], field: str, handlers: tuple[str, ...]) -> str | None:
    present = [name for name in handlers if probe.get(name) is not None]
    if len(present) > 1:
        raise InjectionError(field, f"has more than one handler: {', '.join(present)}")
    return present[0] if present else None


def _resolve_port(
    container: Mapping[str, Any], port: object, field: str, *, named: bool = True
) -> int | None:
    """A probe's port as a number; None when a named port is not among the container's."""
    if isinstance(port, int) and not isinstance(port, bool):
        number = port
    elif isinstance(port, str) and port.isascii() and port.isdigit() and len(port) <= 5:
        number = int(port)
    elif isinstance(port, str) and named and port:
        for declared in mappings(container, "ports", f"{field}.ports"):
            if declared.get("name") == port:
                return _resolve_port(container, declared.get("containerPort"), field, named=False)
        return None
    else:
        raise InjectionError(f"{field}.port", f"must be a port number or name, not {port!r}")
    if not 1 <= number <= 65535:
        raise InjectionError(f"{field}.port", f"{number} is out of range")
    return number


def _with_handler(probe: Mapping[str, Any], old: str, new: str, value: object) -> Json:
    """The probe with handler `old` replaced by `new: value`, in the same position."""
    return {
        (new if key == old else key): (value if key == old else item) for key, item in probe.items()
    }


def _object(value: object, field: str) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):
        raise InjectionError(field, f"must be an object, not {type_name(value)}")
    return value


class _Rewriter:
    """Collects the originals and warnings while rewriting one pod's containers."""

    def __init__(self, status_port: int) -> None:
        self.status_port = status_port
        self.originals: Json = {}
        self.warnings: list[str] = []

    def _agent_get(self, path: str) -> Json:
        return {"path": path, "port": self.status_port, "scheme": "HTTP"}

    def _original(
        self,
        container: Mapping[str, Any],
        handler: Mapping[str, Any],
        kind: str,
        field: str,
        noun: str = "probe",
    ) -> Json | None:
        name = container_name(container, field.rsplit(".", 1)[0])
        port = _resolve_port(container, handler.get("port"), f"{field}.{kind}")
        if port is None:
            self.warnings.append(
                f"{field}: port {handler.get('port')!r} is not a port of container {name}: "
                f"{noun} left unchanged"
            )
            return None
        return {kind: {**handler, "port": port}}

    def probes(self, container: Mapping[str, Any], where: str) -> Json:
        changed: Json = {}
        name = container_name(container, where)
        for probe_field in contract.PROBE_PATHS:
            field = f"{where}.{probe_field}"
            probe = container.get(probe_field)
            if probe is None:
                continue
            probe = _object(probe, field)
            kind = _handler(probe, field, HANDLERS)
            if kind not in _REWRITTEN:
                continue
            handler = _object(probe[kind], f"{field}.{kind}")
            original = self._original(container, handler, kind, field)
            if original is None:
                continue
            if "timeoutSeconds" in probe:
                original["timeoutSeconds"] = probe["timeoutSeconds"]
            path = contract.app_health_path(name, probe_field)
            self.originals[path] = original
            changed[probe_field] = _with_handler(probe, kind, "httpGet", self._agent_get(path))
        return changed

    def hooks(self, container: Mapping[str, Any], where: str) -> Json:
        lifecycle = container.get("lifecycle")
        if lifecycle is None:
            return {}
        lifecycle = _object(lifecycle, f"{where}.lifecycle")
        name = container_name(container, where)
        changed: Json = {}
        for hook in contract.LIFECYCLE_PATHS:
            field = f"{where}.lifecycle.{hook}"
            handlers = lifecycle.get(hook)
            if handlers is None:
                continue
            handlers = _object(handlers, field)
            kind = _handler(handlers, field, _HOOK_HANDLERS)
            if kind not in _HOOKS_REWRITTEN:
                continue
            handler = _object(handlers[kind], f"{field}.{kind}")
            original = self._original(container, handler, kind, field, "hook")
            if original is None:
                continue
            path = contract.app_lifecycle_path(name, hook)
            self.originals[path] = original
            changed[hook] = _with_handler(handlers, kind, "httpGet", self._agent_get(path))
        return {"lifecycle": {**lifecycle, **changed}} if changed else {}

    def container(self, container: Mapping[str, Any], where: str) -> Mapping[str, Any]:
        changed = {**self.probes(container, where), **self.hooks(container, where)}
        return {**container, **changed} if changed else container


def is_native_sidecar(container: Mapping[str, Any]) -> bool:
    """An init container that keeps running beside the app (Kubernetes' sidecar containers)."""
    return container.get("restartPolicy") == "Always"


def rewrite_probes(
    containers: list[Mapping[str, Any]],
    status_port: int,
    init_containers: list[Mapping[str, Any]] | None = None,
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], Json, list[str]]:
    """The app containers and the init containers with rewritten probes and hooks, the agent's
    JSON of originals, and warnings. Only native-sidecar init containers are rewritten (others
    may carry neither probes nor hooks); pass `init_containers=None` to leave them alone."""
    rewriter = _Rewriter(status_port)
    result = [rewriter.container(c, f"spec.containers[{i}]") for i, c in enumerate(containers)]
    inits: list[Mapping[str, Any]] = []
    for index, container in enumerate(init_containers or ()):
        if is_native_sidecar(container):
            container = rewriter.container(container, f"spec.initContainers[{index}]")
        inits.append(container)
    return result, inits, rewriter.originals, rewriter.warnings


def _restore(container: Mapping[str, Any], originals: Mapping[str, Any]) -> Mapping[str, Any]:
    name = container.get("name")
    if not isinstance(name, str):
        return container
    changed: Json = {}
    for probe_field in contract.PROBE_PATHS:
        probe = container.get(probe_field)
        path = contract.app_health_path(name, probe_field)
        restored = _restored_handler(probe, path, originals, _REWRITTEN)
        if restored is not None:
            changed[probe_field] = restored
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, Mapping):
        hooks: Json = {}
        for hook in contract.LIFECYCLE_PATHS:
            path = contract.app_lifecycle_path(name, hook)
            restored = _restored_handler(lifecycle.get(hook), path, originals, _HOOKS_REWRITTEN)
            if restored is not None:
                hooks[hook] = restored
        if hooks:
            changed["lifecycle"] = {**lifecycle, **hooks}
    return {**container, **changed} if changed else container


def _restored_handler(
    handlers: object, path: str, originals: Mapping[str, Any], kinds: tuple[str, ...]
) -> Json | None:
    """The handlers with the agent's httpGet replaced by the original, when it points at `path`."""
    if not isinstance(handlers, Mapping):
        return None
    get = handlers.get("httpGet")
    original = originals.get(path)
    if not isinstance(get, Mapping) or get.get("path") != path or not isinstance(original, Mapping):
        return None
    found = [kind for kind in kinds if isinstance(original.get(kind), Mapping)]
    if len(found) != 1:
        return None
    return _with_handler(handlers, "httpGet", found[0], original[found[0]])


def restore_probes(
    containers: list[Mapping[str, Any]], originals: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Undoes `rewrite_probes` for probes and hooks that still point at the agent (un-injection)."""
    return [_restore(container, originals) for container in containers]
