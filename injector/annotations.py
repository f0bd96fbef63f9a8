"""The pod's annotations, validated into `PodSettings`: what this pod's injection looks like.

Every value is checked before it is used; a bad one raises `InjectionError` whose field is the
annotation's name. Each annotation that changes something leaves a note for `--explain`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from injector import contract, proxy_config
from injector.config import InjectionConfig, is_image_reference
from injector.model import InjectionError
from injector.quantity import parse_quantity
from injector.redirect.spec import (
    DEFAULT_EXCLUDED_INBOUND_PORTS,
    InterceptionMode,
    RedirectSpec,
    RedirectSpecError,
    parse_port,
    parse_port_list,
)

TRAFFIC: Final = "traffic.sidecar.istio.io/"
INCLUDE_OUTBOUND_IP_RANGES: Final = TRAFFIC + "includeOutboundIPRanges"
EXCLUDE_OUTBOUND_IP_RANGES: Final = TRAFFIC + "excludeOutboundIPRanges"
INCLUDE_INBOUND_PORTS: Final = TRAFFIC + "includeInboundPorts"
EXCLUDE_INBOUND_PORTS: Final = TRAFFIC + "excludeInboundPorts"
INCLUDE_OUTBOUND_PORTS: Final = TRAFFIC + "includeOutboundPorts"
EXCLUDE_OUTBOUND_PORTS: Final = TRAFFIC + "excludeOutboundPorts"
EXCLUDE_INTERFACES: Final = TRAFFIC + "excludeInterfaces"
INTERCEPTION_MODE: Final = "sidecar.istio.io/interceptionMode"
STATUS_PORT: Final = "status.sidecar.istio.io/port"
PROXY_CPU: Final = "sidecar.istio.io/proxyCPU"
PROXY_MEMORY: Final = "sidecar.istio.io/proxyMemory"
PROXY_CPU_LIMIT: Final = "sidecar.istio.io/proxyCPULimit"
PROXY_MEMORY_LIMIT: Final = "sidecar.istio.io/proxyMemoryLimit"
PROXY_IMAGE: Final = "sidecar.istio.io/proxyImage"
REWRITE_PROBES: Final = "sidecar.istio.io/rewriteAppHTTPProbers"
NATIVE_SIDECAR: Final = "sidecar.istio.io/nativeSidecar"
PROXY_CONFIG: Final = proxy_config.ANNOTATION

# Go's strconv.ParseBool, which Istio uses for its boolean annotations.
_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_RESOURCES: Final = (
    (PROXY_CPU, "requests", "cpu"),
    (PROXY_MEMORY, "requests", "memory"),
    (PROXY_CPU_LIMIT, "limits", "cpu"),
    (PROXY_MEMORY_LIMIT, "limits", "memory"),
)


@dataclass(frozen=True)
class PodSettings:
    """Everything the renderer needs to know about this pod's proxy and redirect."""

    redirect: RedirectSpec
    status_port: int
    proxy_image: str
    resources: Mapping[str, Mapping[str, str]]
    rewrite_probes: bool
    native_sidecar: bool
    hold_application: bool
    proxy_config: proxy_config.ProxyConfig
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def intercepts(self) -> bool:
        return self.redirect.mode is not InterceptionMode.NONE


def _bool(annotations: Mapping[str, str], key: str, default: bool) -> bool:
    value = annotations.get(key)
    if value is None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InjectionError(key, f"{value!r} is not true or false")


_SUPPORTED_MODES: Final = {
    mode.value: mode for mode in (InterceptionMode.REDIRECT, InterceptionMode.NONE)
}


def _mode(annotations: Mapping[str, str]) -> InterceptionMode:
    value = annotations.get(INTERCEPTION_MODE, InterceptionMode.REDIRECT.value)
    if value == InterceptionMode.TPROXY.value:
        raise InjectionError(
            INTERCEPTION_MODE, "TPROXY is not supported yet: use REDIRECT (or NONE)"
        )
    mode = _SUPPORTED_MODES.get(value)
    if mode is None:
        raise InjectionError(INTERCEPTION_MODE, f"{value!r} is not REDIRECT or NONE")
    return mode


def _resources(
    annotations: Mapping[str, str], config: InjectionConfig, notes: list[str]
) -> dict[str, dict[str, str]]:
    """Any resource annotation replaces all the defaults (as in Istio); values kept as written."""
    given = [(key, kind, name) for key, kind, name in _RESOURCES if key in annotations]
    if not given:
        defaults = (
            ("requests", "cpu", config.proxy_cpu),
            ("requests", "memory", config.proxy_memory),
            ("limits", "cpu", config.proxy_cpu_limit),
            ("limits", "memory", config.proxy_memory_limit),
        )
        result: dict[str, dict[str, str]] = {}
        for kind, name, value in defaults:
            if value:
                result.setdefault(kind, {})[name] = value
        return result
    result = {}
    amounts = {}
    for key, kind, name in given:
        value = annotations[key]
        try:
            amounts[(kind, name)] = parse_quantity(value)
        except ValueError as error:
            raise InjectionError(key, str(error)) from None
        result.setdefault(kind, {})[name] = value
        notes.append(f"{key}={value}: proxy {kind}.{name} is {value}")
    for key, kind, name in given:
        limit = amounts.get(("limits", name))
        if kind == "requests" and limit is not None and amounts[(kind, name)] > limit:
            raise InjectionError(key, f"{annotations[key]!r} exceeds the {name} limit")
    notes.append("resource annotations replace all of the default proxy resources")
    return result


def _port_lists(annotations: Mapping[str, str], status_port: int) -> dict[str, str]:
    """The redirect's port flags. Inbound exclusions always keep the mesh's own ports."""
    user = annotations.get(EXCLUDE_INBOUND_PORTS, "")
    status = (status_port,) if status_port else ()
    ports = (
        *DEFAULT_EXCLUDED_INBOUND_PORTS,
        *status,
        *(parse_port_list(user, EXCLUDE_INBOUND_PORTS) or ()),
    )
    excluded = dict.fromkeys(ports)  # in order, once each (a list scan per port is quadratic)
    return {
        "include_inbound_ports": annotations.get(INCLUDE_INBOUND_PORTS, "*"),
        "exclude_inbound_ports": ",".join(map(str, excluded)),
        "include_outbound_ports": annotations.get(INCLUDE_OUTBOUND_PORTS, ""),
        "exclude_outbound_ports": annotations.get(EXCLUDE_OUTBOUND_PORTS, ""),
    }


_FLAG_ANNOTATIONS: Final = {
    "include_outbound_cidrs": INCLUDE_OUTBOUND_IP_RANGES,
    "exclude_outbound_cidrs": EXCLUDE_OUTBOUND_IP_RANGES,
    "include_inbound_ports": INCLUDE_INBOUND_PORTS,
    "exclude_inbound_ports": EXCLUDE_INBOUND_PORTS,
    "include_outbound_ports": INCLUDE_OUTBOUND_PORTS,
    "exclude_outbound_ports": EXCLUDE_OUTBOUND_PORTS,
    "exclude_interfaces": EXCLUDE_INTERFACES,
    "mode": INTERCEPTION_MODE,
}
_FLAG_BY_SPEC_FIELD: Final = {
    key.replace("_", "-"): value for key, value in _FLAG_ANNOTATIONS.items()
}


_TRAFFIC_KEYS: Final = (
    INCLUDE_OUTBOUND_IP_RANGES,
    EXCLUDE_OUTBOUND_IP_RANGES,
    EXCLUDE_INTERFACES,
    INCLUDE_INBOUND_PORTS,
    EXCLUDE_INBOUND_PORTS,
    INCLUDE_OUTBOUND_PORTS,
    EXCLUDE_OUTBOUND_PORTS,
)


# Cache entries are bounded: 256 of them, each from traffic annotations of at most this length.
_CACHED_TRAFFIC_CHARS: Final = 1024


def _redirect(
    annotations: Mapping[str, str], config: InjectionConfig, status_port: int
) -> RedirectSpec:
    mode = _mode(annotations)
    traffic = tuple(annotations.get(key) for key in _TRAFFIC_KEYS)
    if sum(len(value) for value in traffic if value is not None) > _CACHED_TRAFFIC_CHARS:
        # A rare, long value: not kept in memory.
        return _build_redirect(config.proxy_uid, config.proxy_gid, mode, status_port, traffic)
    return _cached_redirect(config.proxy_uid, config.proxy_gid, mode, status_port, traffic)


def _build_redirect(
    proxy_uid: int,
    proxy_gid: int,
    mode: InterceptionMode,
    status_port: int,
    traffic: tuple[str | None, ...],
) -> RedirectSpec:
    """The spec for these inputs. Most pods of a mesh carry the same few traffic annotations
    (or none), so the parsed spec is cached: it is frozen, so sharing it between pods is safe.
    Errors are raised again each time (the cache keeps only results)."""
    annotations = {
        key: value for key, value in zip(_TRAFFIC_KEYS, traffic, strict=True) if value is not None
    }
    try:
        return RedirectSpec.from_flags(
            proxy_uid=str(proxy_uid),
            proxy_gid=str(proxy_gid),
            outbound_port=str(contract.OUTBOUND_CAPTURE_PORT),
            inbound_port=str(contract.INBOUND_CAPTURE_PORT),
            mode=mode.value,
            include_outbound_cidrs=annotations.get(INCLUDE_OUTBOUND_IP_RANGES, "*"),
            exclude_outbound_cidrs=annotations.get(EXCLUDE_OUTBOUND_IP_RANGES, ""),
            exclude_interfaces=annotations.get(EXCLUDE_INTERFACES, ""),
            **_port_lists(annotations, status_port),
        )
    except RedirectSpecError as error:
        field_name = _FLAG_BY_SPEC_FIELD.get(error.field, error.field)
        raise InjectionError(field_name, error.message) from None


_cached_redirect: Final = functools.lru_cache(maxsize=256)(_build_redirect)


def _traffic_notes(annotations: Mapping[str, str], spec: RedirectSpec) -> list[str]:
    notes = []
    described = {
        INCLUDE_OUTBOUND_IP_RANGES: "outbound traffic captured only to",
        EXCLUDE_OUTBOUND_IP_RANGES: "outbound traffic bypasses the proxy to",
        INCLUDE_INBOUND_PORTS: "inbound traffic captured only on ports",
        EXCLUDE_INBOUND_PORTS: "inbound traffic bypasses the proxy on ports",
        INCLUDE_OUTBOUND_PORTS: "outbound traffic always captured on ports",
        EXCLUDE_OUTBOUND_PORTS: "outbound traffic bypasses the proxy on ports",
        EXCLUDE_INTERFACES: "traffic on these interfaces bypasses the proxy:",
    }
    for key, text in described.items():
        if key in annotations:
            value = annotations[key].strip()
            meaning = {"*": "(all)", "": "(none)"}.get(value, value)
            notes.append(f"{key}={annotations[key]!r}: {text} {meaning}")
    if INTERCEPTION_MODE in annotations:
        if spec.mode is InterceptionMode.NONE:
            notes.append(f"{INTERCEPTION_MODE}=NONE: no traffic redirect, no init container")
        else:
            notes.append(f"{INTERCEPTION_MODE}={spec.mode.value}: iptables REDIRECT")
    return notes


def pod_settings(annotations: Mapping[str, str], config: InjectionConfig) -> PodSettings:
    """Validates every annotation the injector honours and combines them with the config."""
    notes: list[str] = []
    warnings: list[str] = []
    status_text = annotations.get(STATUS_PORT)
    status_port = contract.AGENT_STATUS_PORT
    if status_text is not None:
        try:
            status_port = parse_port(status_text, STATUS_PORT)
        except RedirectSpecError as error:
            raise InjectionError(STATUS_PORT, error.message) from None
        if status_port == 0:
            notes.append(f"{STATUS_PORT}=0: the proxy's health probes are disabled")
        else:
            notes.append(f"{STATUS_PORT}={status_port}: the agent serves status on {status_port}")
    redirect = _redirect(annotations, config, status_port)
    notes.extend(_traffic_notes(annotations, redirect))

    image = config.proxy_image
    if PROXY_IMAGE in annotations:
        image = annotations[PROXY_IMAGE]
        if not is_image_reference(image):
            raise InjectionError(PROXY_IMAGE, f"{image!r} is not an image reference")
        notes.append(f"{PROXY_IMAGE}={image}: the proxy (not the init container) runs {image}")

    resources = _resources(annotations, config, notes)
    rewrite = _bool(annotations, REWRITE_PROBES, config.rewrite_app_http_probers)
    if REWRITE_PROBES in annotations:
        state = "on" if rewrite else "off"
        notes.append(f"{REWRITE_PROBES}={annotations[REWRITE_PROBES]}: probe rewriting {state}")
    if rewrite and status_port == 0:
        rewrite = False
        if REWRITE_PROBES in annotations:
            warnings.append(f"{REWRITE_PROBES}: ignored, {STATUS_PORT} is 0 (no agent to probe)")
    native = _bool(annotations, NATIVE_SIDECAR, config.native_sidecar)
    if NATIVE_SIDECAR in annotations:
        placement = "an init container (native sidecar)" if native else "the last container"
        notes.append(f"{NATIVE_SIDECAR}={annotations[NATIVE_SIDECAR]}: the proxy is {placement}")

    proxy = proxy_config.parse_proxy_config(annotations.get(PROXY_CONFIG, ""))
    warnings.extend(proxy.warnings)
    hold = config.hold_application_until_proxy_starts
    if proxy.hold_application_until_proxy_starts is not None:
        hold = proxy.hold_application_until_proxy_starts
        notes.append(f"{PROXY_CONFIG}: holdApplicationUntilProxyStarts={str(hold).lower()}")
    if proxy.proxy_metadata:
        names = ", ".join(sorted(proxy.proxy_metadata))
        notes.append(f"{PROXY_CONFIG}: proxyMetadata sets the proxy's env {names}")
    if hold and native and status_port == 0:
        warnings.append(
            "holdApplicationUntilProxyStarts has no effect: the proxy has no startup probe"
        )
    return PodSettings(
        redirect=redirect,
        status_port=status_port,
        proxy_image=image,
        resources=resources,
        rewrite_probes=rewrite,
        native_sidecar=native,
        hold_application=hold,
        proxy_config=proxy,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
