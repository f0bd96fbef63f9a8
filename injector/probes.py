"""Rewriting the app's probes so the kubelet asks the agent, which asks the app.

With mTLS on, the kubelet's plain probes would be refused by the proxy (or bypass it). As in
Istio, httpGet, tcpSocket and grpc probes become an httpGet on the agent's status port at
`/app-health/<container>/<livez|readyz|startupz>`; the original handlers, named ports resolved,
travel to the agent as JSON (`MIZZEN_APP_PROBES`). exec probes run in the app's container and stay.

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


def _handler(probe: Mapping[str, Any], field: str) -> str | None:
    present = [name for name in HANDLERS if probe.get(name) is not None]
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


def rewrite_probes(
    containers: list[Mapping[str, Any]], status_port: int
) -> tuple[list[Mapping[str, Any]], Json, list[str]]:
    """The containers with rewritten probes, the agent's JSON of originals, and warnings."""
    result: list[Mapping[str, Any]] = []
    originals: Json = {}
    warnings: list[str] = []
    for index, container in enumerate(containers):
        name = container_name(container, f"spec.containers[{index}]")
        changed: Json = {}
        for probe_field in contract.PROBE_PATHS:
            field = f"spec.containers[{index}].{probe_field}"
            probe = container.get(probe_field)
            if probe is None:
                continue
            if type(probe) is not dict and not isinstance(probe, Mapping):
                raise InjectionError(field, f"must be an object, not {type_name(probe)}")
            kind = _handler(probe, field)
            if kind not in _REWRITTEN:
                continue
            handler = probe[kind]
            if type(handler) is not dict and not isinstance(handler, Mapping):
                raise InjectionError(f"{field}.{kind}", "must be an object")
            port = _resolve_port(container, handler.get("port"), f"{field}.{kind}")
            if port is None:
                warnings.append(
                    f"{field}: port {handler.get('port')!r} is not a port of container {name}: "
                    "probe left unchanged"
                )
                continue
            path = contract.app_health_path(name, probe_field)
            original: Json = {kind: {**handler, "port": port}}
            if "timeoutSeconds" in probe:
                original["timeoutSeconds"] = probe["timeoutSeconds"]
            originals[path] = original
            agent_get = {"path": path, "port": status_port, "scheme": "HTTP"}
            changed[probe_field] = _with_handler(probe, kind, "httpGet", agent_get)
        result.append({**container, **changed} if changed else container)
    return result, originals, warnings


def restore_probes(
    containers: list[Mapping[str, Any]], originals: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """Undoes `rewrite_probes` for probes that still point at the agent (un-injection)."""
    result: list[Mapping[str, Any]] = []
    for container in containers:
        name = container.get("name")
        changed: Json = {}
        for probe_field in contract.PROBE_PATHS:
            probe = container.get(probe_field)
            if not isinstance(probe, Mapping) or not isinstance(name, str):
                continue
            get = probe.get("httpGet")
            path = contract.app_health_path(name, probe_field)
            original = originals.get(path)
            if not isinstance(get, Mapping) or get.get("path") != path:
                continue
            if not isinstance(original, Mapping):
                continue
            kinds = [kind for kind in _REWRITTEN if isinstance(original.get(kind), Mapping)]
            if len(kinds) == 1:
                changed[probe_field] = _with_handler(probe, "httpGet", kinds[0], original[kinds[0]])
        result.append({**container, **changed} if changed else container)
    return result
