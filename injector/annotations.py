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
READINESS: Final = "readiness.status.sidecar.istio.io/"
READINESS_INITIAL_DELAY: Final = READINESS + "initialDelaySeconds"
READINESS_PERIOD: Final = READINESS + "periodSeconds"
READINESS_FAILURE_THRESHOLD: Final = READINESS + "failureThreshold"
INJECT_TEMPLATES: Final = "inject.istio.io/templates"
# Istio's default template; mizzen renders only the sidecar (no gateway or custom templates).
SIDECAR_TEMPLATE: Final = "sidecar"
# The proxy's readiness probe when no annotation says otherwise (Istio's chart defaults:
# readinessInitialDelaySeconds 0, readinessPeriodSeconds 15, readinessFailureThreshold 4).
READINESS_DEFAULTS: Final = {
    "initialDelaySeconds": 0,
    "periodSeconds": 15,
    "failureThreshold": 4,
}
_READINESS_KEYS: Final = {
    READINESS_INITIAL_DELAY: "initialDelaySeconds",
    READINESS_PERIOD: "periodSeconds",
    READINESS_FAILURE_THRESHOLD: "failureThreshold",
}
_INT32_MAX: Final = 2**31 - 1
_CIDR_ANNOTATIONS: Final = (
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
)
_PORT_ANNOTATIONS: Final = tuple(
    TRAFFIC + name
    for name in ("includeInboundPorts", "excludeInboundPorts", "includeOutboundPorts",
                 "excludeOutboundPorts")
)  # fmt: skip

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
    readiness: Mapping[str, int] = field(default_factory=lambda: dict(READINESS_DEFAULTS))
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


def _native(
    annotations: Mapping[str, str], default: bool, notes: list[str], warnings: list[str]
) -> bool:
    """Istio reads sidecar.istio.io/nativeSidecar as exactly "true" (on) or "false" (off);
    any other value leaves the mesh's default (pkg/kube/inject RunTemplate)."""
    value = annotations.get(NATIVE_SIDECAR)
    if value is None:
        return default
    if value not in {"true", "false"}:
        state = "native" if default else "not native"
        warnings.append(
            f'{NATIVE_SIDECAR}={value!r} ignored: only exactly "true" or "false" count '
            f"(as in Istio); the mesh's default applies ({state})"
        )
        return default
    native = value == "true"
    placement = "an init container (native sidecar)" if native else "the last container"
    notes.append(f"{NATIVE_SIDECAR}={value}: the proxy is {placement}")
    return native


def _readiness(annotations: Mapping[str, str], notes: list[str]) -> dict[str, int]:
    """The proxy's readiness probe timings (Istio validates each as a uint32; the API server
    takes at most an int32, so larger values are refused here rather than by it)."""
    result = dict(READINESS_DEFAULTS)
    for key, field_name in _READINESS_KEYS.items():
        text = annotations.get(key)
        if text is None:
            continue
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            raise InjectionError(key, f"{text!r} is not a non-negative integer")
        if int(text) > _INT32_MAX:
            raise InjectionError(key, f"{text} is larger than {_INT32_MAX}")
        result[field_name] = int(text)
        notes.append(f"{key}={text}: the proxy's readiness probe {field_name} is {text}")
    return result


def _check_list_syntax(annotations: Mapping[str, str]) -> None:
    """Istio's list syntax, stricter than the redirect flags: CIDR lists are split on commas
    and every item parsed as it stands (no spaces, no empty items); port lists are trimmed
    around each item but an empty item is refused (pkg/kube/inject/validate.go)."""
    for key in _CIDR_ANNOTATIONS:
        value = annotations.get(key)
        if not value or value == "*":
            continue
        for item in value.split(","):
            if not item or item != item.strip():
                raise InjectionError(
                    key,
                    f"failed parsing cidr {item!r}: items are separated by commas alone, "
                    "without spaces or empty items (as Istio requires)",
                )
    for key in _PORT_ANNOTATIONS:
        value = annotations.get(key, "").strip()
        if not value or value == "*":
            continue
        if any(not item.strip() for item in value.split(",")):
            raise InjectionError(key, f"{value!r} has an empty item (as Istio, refused)")


def _check_templates(annotations: Mapping[str, str], notes: list[str]) -> None:
    """`inject.istio.io/templates` names Istio's injection templates (gateway, grpc-agent,
    custom ones); mizzen renders only the sidecar, so any other template is refused rather than
    silently replaced by a sidecar."""
    value = annotations.get(INJECT_TEMPLATES)
    if value is None:
        return
    names = [name.strip() for name in value.split(",")]
    others = [name for name in names if name != SIDECAR_TEMPLATE]
    if others:
        raise InjectionError(
            INJECT_TEMPLATES,
            f"template(s) {', '.join(repr(n) for n in others)} are not supported: mizzen injects "
            f"only the {SIDECAR_TEMPLATE!r} template (no gateways or custom templates)",
        )
    notes.append(f"{INJECT_TEMPLATES}={value}: the sidecar template, as by default")


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


# Every annotation `_read_settings` reads (tests record its reads to keep this list whole).
SETTINGS_KEYS: Final = (
    INJECT_TEMPLATES,
    *_CIDR_ANNOTATIONS,
    *_PORT_ANNOTATIONS,
    EXCLUDE_INTERFACES,
    INTERCEPTION_MODE,
    STATUS_PORT,
    PROXY_IMAGE,
    *(key for key, _, _ in _RESOURCES),
    REWRITE_PROBES,
    NATIVE_SIDECAR,
    *_READINESS_KEYS,
    PROXY_CONFIG,
)
# Cache entries are bounded: 256 of them, each from settings annotations of at most this length.
_CACHED_SETTINGS_CHARS: Final = 4096


def pod_settings(annotations: Mapping[str, str], config: InjectionConfig) -> PodSettings:
    """Validates every annotation the injector honours and combines them with the config.

    The pods of a mesh carry a few combinations of these annotations, so the result is cached
    per config and their values (about 20 times cheaper than reading them again). The settings
    are frozen, and their mappings are shared between pods: read-only. Errors are raised again
    each time (the cache keeps only results)."""
    values = tuple(annotations.get(key) for key in SETTINGS_KEYS)
    if sum(len(value) for value in values if value is not None) > _CACHED_SETTINGS_CHARS:
        return _build_settings(config, values)  # a rare, long value: not kept in memory
    return _cached_settings(config, values)


def _build_settings(config: InjectionConfig, values: tuple[str | None, ...]) -> PodSettings:
    annotations = {
        key: value for key, value in zip(SETTINGS_KEYS, values, strict=True) if value is not None
    }
    return _read_settings(annotations, config)


_cached_settings: Final = functools.lru_cache(maxsize=256)(_build_settings)


def _read_settings(annotations: Mapping[str, str], config: InjectionConfig) -> PodSettings:
    """`pod_settings`, uncached."""
    notes: list[str] = []
    warnings: list[str] = []
    _check_templates(annotations, notes)
    _check_list_syntax(annotations)
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
    native = _native(annotations, config.native_sidecar, notes, warnings)
    readiness = _readiness(annotations, notes)
    if status_port == 0 and any(key in annotations for key in _READINESS_KEYS):
        warnings.append(f"{READINESS}* ignored: {STATUS_PORT} is 0 (the proxy has no probes)")

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
        readiness=readiness,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )
