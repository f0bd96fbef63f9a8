"""The agent's settings, parsed once at the edge from the environment the injector wrote.

The names of the variables come from `injector.contract`, so the injector and the agent cannot
drift apart. `AgentSettings.from_env` is the only place that reads them; everything below it
receives the frozen model. Bad values raise `SettingsError` naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from control.agent.identity_settings import (
    IdentityOptions,
    IdentitySettings,
    IdentitySettingsError,
    identity_settings,
)
from injector import contract

_PORT_FIELD = Field(ge=1, le=65535)
REQUIRED_ENV: Final = (
    contract.ENV_POD_NAME,
    contract.ENV_POD_NAMESPACE,
    contract.ENV_INSTANCE_IP,
    contract.ENV_DISCOVERY_ADDRESS,
)


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME_RE: Final = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def _is_ip(host: str) -> bool:
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class SettingsError(ValueError):
    """A variable or flag the agent cannot use; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class HttpHeader(_Frozen):
    name: str
    value: str


class HttpGetAction(_Frozen):
    path: str = "/"
    port: int = _PORT_FIELD
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: tuple[HttpHeader, ...] = Field(default=(), alias="httpHeaders")


class TcpSocketAction(_Frozen):
    port: int = _PORT_FIELD
    host: str | None = None


class GrpcAction(_Frozen):
    port: int = _PORT_FIELD
    service: str | None = None


# The kubelet's probe timeout when a probe sets none.
PROBE_TIMEOUT_SECONDS: Final = 1.0
# A lifecycle hook has no timeout of its own: the kubelet bounds it by the pod's termination grace
# period, 30 s unless set; the agent stops waiting then.
HOOK_TIMEOUT_SECONDS: Final = 30.0
# The paths Istio's pilot-agent serves (its appProberPattern), each kind under its own prefix.
_APP_PATH_RE: Final = re.compile(
    r"^(?:/app-health/[^/]+/(?:livez|readyz|startupz)"
    r"|/app-lifecycle/[^/]+/(?:prestopz|poststartz))$"
)


class AppProbe(_Frozen):
    """One of the app's original probes or lifecycle hooks, which the agent runs for the kubelet."""

    http_get: HttpGetAction | None = Field(default=None, alias="httpGet")
    tcp_socket: TcpSocketAction | None = Field(default=None, alias="tcpSocket")
    grpc: GrpcAction | None = None
    timeout_seconds: float = Field(default=PROBE_TIMEOUT_SECONDS, gt=0, alias="timeoutSeconds")


class DiscoveryAddress(_Frozen):
    host: str
    port: int = _PORT_FIELD

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    @classmethod
    def parse(cls, text: str) -> DiscoveryAddress:
        """`host:port` or `[v6]:port`."""
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isascii() or not port.isdigit():
            raise SettingsError(contract.ENV_DISCOVERY_ADDRESS, f"{text!r} is not host:port")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not _is_ip(host) and not _HOSTNAME_RE.match(host):
            raise SettingsError(contract.ENV_DISCOVERY_ADDRESS, f"{text!r} has no usable host")
        if not 1 <= int(port) <= 65535:
            raise SettingsError(contract.ENV_DISCOVERY_ADDRESS, f"port {port} is out of range")
        return cls(host=host, port=int(port))


class AgentOptions(_Frozen):
    """How this agent runs Envoy: the command line's part of the settings (ports are flags so
    that tests can run several agents side by side)."""

    admin_port: int = Field(default=contract.ENVOY_ADMIN_PORT, ge=1, le=65535)
    readiness_port: int = Field(default=contract.READINESS_PORT, ge=1, le=65535)
    status_port: int | None = None  # None: MIZZEN_STATUS_PORT, else 15020
    prometheus_port: int = Field(default=contract.ENVOY_PROMETHEUS_PORT, ge=0, le=65535)
    outbound_port: int = Field(default=contract.OUTBOUND_CAPTURE_PORT, ge=1, le=65535)
    inbound_port: int = Field(default=contract.INBOUND_CAPTURE_PORT, ge=1, le=65535)
    proxy_uid: int = Field(default=1337, ge=0)
    proxy_gid: int = Field(default=1337, ge=0)
    # None: --disable-hot-restart (no shared memory, so agents never collide on a base id).
    base_id: int | None = Field(default=None, ge=0)
    drain_duration: float = Field(default=5.0, ge=0, le=86400)  # a day: Envoy's is a uint32
    concurrency: int = Field(default=2, ge=0, le=1024)
    log_level: Literal["trace", "debug", "info", "warning", "error", "critical", "off"] = "warning"
    envoy_path: Path | None = None
    config_dir: Path | None = None  # None: MIZZEN_ENVOY_CONFIG_DIR, else a fresh temp dir
    restart_backoff_initial: float = Field(default=0.2, gt=0)
    restart_backoff_max: float = Field(default=10.0, gt=0)
    # Delta xDS by default: the control plane sends only what changed (issue 7); GRPC is
    # State of the World, for control planes that do not serve Delta.
    xds_api: Literal["DELTA_GRPC", "GRPC"] = "DELTA_GRPC"
    identity: IdentityOptions = IdentityOptions()


class AgentSettings(_Frozen):
    """Who the proxy is (from the pod's environment) and how it runs (`options`)."""

    # Kubernetes' own rules (DNS-1123 subdomain, label): no `~` or `.` can confuse the node id.
    pod_name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    instance_ip: str
    service_account: str = "default"
    node_name: str = ""
    discovery_address: DiscoveryAddress
    trust_domain: str = "cluster.local"
    cluster_domain: str = "cluster.local"
    revision: str = "default"
    workload_name: str = ""
    labels: Mapping[str, str] = Field(default_factory=dict)
    app_containers: tuple[str, ...] = ()
    interception_mode: Literal["REDIRECT", "TPROXY", "NONE"] = "REDIRECT"
    app_probes: Mapping[str, AppProbe] = Field(default_factory=dict)
    # The app's own prometheus.io/* annotations (scrape, port, path): merged metrics.
    prometheus_annotations: Mapping[str, str] = Field(default_factory=dict)
    status_port: int = Field(default=contract.AGENT_STATUS_PORT, ge=0, le=65535)
    config_dir: Path | None = None
    options: AgentOptions = AgentOptions()
    identity: IdentitySettings | None = None  # None: no workload certificate, plaintext xDS

    @field_validator("instance_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if "%" in value:  # `ipaddress` takes any text after it; a node id must not
            raise ValueError("an IPv6 zone id is not allowed")
        return str(ipaddress.ip_address(value.strip()))

    @property
    def node_id(self) -> str:
        """Istio's sidecar node id: `sidecar~<ip>~<pod>.<ns>~<ns>.svc.<cluster domain>`."""
        return (
            f"sidecar~{self.instance_ip}~{self.pod_name}.{self.namespace}"
            f"~{self.namespace}.svc.{self.cluster_domain}"
        )

    @property
    def spiffe_id(self) -> str:
        return f"spiffe://{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def service_cluster(self) -> str:
        """`<canonical name>.<namespace>`, as Istio names a proxy's service cluster."""
        name = (
            self.labels.get(contract.CANONICAL_NAME_LABEL)
            or self.labels.get("app.kubernetes.io/name")
            or self.labels.get("app")
            or self.workload_name
            or self.pod_name
        )
        return f"{name}.{self.namespace}"

    @classmethod
    def from_env(cls, env: Mapping[str, str], options: AgentOptions | None = None) -> AgentSettings:
        """Reads the injector's variables (names from `injector.contract`); raises SettingsError."""
        options = _with_proxy_config(options or AgentOptions(), env)
        missing = [name for name in REQUIRED_ENV if not env.get(name, "").strip()]
        if missing:
            raise SettingsError(missing[0], "is required (set by the injector from the pod)")
        fields: dict[str, Any] = {
            "pod_name": env[contract.ENV_POD_NAME].strip(),
            "namespace": env[contract.ENV_POD_NAMESPACE].strip(),
            "instance_ip": env[contract.ENV_INSTANCE_IP],
            "discovery_address": DiscoveryAddress.parse(env[contract.ENV_DISCOVERY_ADDRESS]),
            "labels": _json_object(env, contract.ENV_LABELS, str),
            "app_probes": _probes(env),
            "prometheus_annotations": _json_object(env, contract.ENV_PROMETHEUS_ANNOTATIONS, str),
            "app_containers": tuple(
                c.strip() for c in env.get(contract.ENV_APP_CONTAINERS, "").split(",") if c.strip()
            ),
            "options": options,
        }
        optional = {
            "service_account": contract.ENV_SERVICE_ACCOUNT,
            "node_name": contract.ENV_NODE_NAME,
            "trust_domain": contract.ENV_TRUST_DOMAIN,
            "cluster_domain": contract.ENV_CLUSTER_DOMAIN,
            "revision": contract.ENV_REVISION,
            "workload_name": contract.ENV_WORKLOAD_NAME,
            "interception_mode": contract.ENV_INTERCEPTION_MODE,
            "config_dir": contract.ENV_ENVOY_CONFIG_DIR,
        }
        for field, name in optional.items():
            if env.get(name, "").strip():
                fields[field] = env[name].strip()
        if options.status_port is not None:
            fields["status_port"] = options.status_port
        elif env.get(contract.ENV_STATUS_PORT, "").strip():
            fields["status_port"] = _int(env, contract.ENV_STATUS_PORT)
        if options.config_dir is not None:
            fields["config_dir"] = options.config_dir
        settings = _validate(fields)
        try:
            identity = identity_settings(
                env,
                options.identity,
                spiffe_id=settings.spiffe_id,
                discovery_host=settings.discovery_address.host,
                discovery_port=settings.discovery_address.port,
            )
        except IdentitySettingsError as error:
            raise SettingsError(error.field, error.message) from None
        return settings.model_copy(update={"identity": identity}) if identity else settings


_ENV_OF_FIELD: Final = {
    "pod_name": contract.ENV_POD_NAME,
    "namespace": contract.ENV_POD_NAMESPACE,
    "instance_ip": contract.ENV_INSTANCE_IP,
    "service_account": contract.ENV_SERVICE_ACCOUNT,
    "interception_mode": contract.ENV_INTERCEPTION_MODE,
    "status_port": contract.ENV_STATUS_PORT,
    "app_probes": contract.ENV_APP_PROBES,
    "labels": contract.ENV_LABELS,
}


def _validate(fields: dict[str, Any]) -> AgentSettings:
    try:
        return AgentSettings.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        name = _ENV_OF_FIELD.get(loc[0], loc[0]) if loc else "settings"
        raise SettingsError(name, first["msg"]) from None


def _int(env: Mapping[str, str], name: str) -> int:
    text = env[name].strip()
    if not text.isascii() or not text.isdigit():
        raise SettingsError(name, f"{text!r} is not a number")
    return int(text)


def _json_object(env: Mapping[str, str], name: str, value_type: type) -> dict[str, Any]:
    text = env.get(name, "").strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(name, f"is not JSON ({error.msg})") from None
    if not isinstance(data, dict):
        raise SettingsError(name, "must be a JSON object")
    for key, value in data.items():
        if not isinstance(value, value_type):
            raise SettingsError(name, f"value of {key!r} must be a {value_type.__name__}")
    return data


def _probes(env: Mapping[str, str]) -> dict[str, AppProbe]:
    raw = _json_object(env, contract.ENV_APP_PROBES, dict)
    probes: dict[str, AppProbe] = {}
    for path, spec in raw.items():
        if not _APP_PATH_RE.match(path):
            raise SettingsError(
                contract.ENV_APP_PROBES,
                f"{path!r} is not an /app-health/<container>/<livez|readyz|startupz> or "
                "/app-lifecycle/<container>/<poststartz|prestopz> path",
            )
        if path.startswith(contract.APP_LIFECYCLE_PREFIX) and "timeoutSeconds" not in spec:
            spec = {**spec, "timeoutSeconds": HOOK_TIMEOUT_SECONDS}
        try:
            probe = AppProbe.model_validate(spec)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SettingsError(
                contract.ENV_APP_PROBES, f"{path}: {where}: {first['msg']}"
            ) from None
        actions = [a for a in (probe.http_get, probe.tcp_socket, probe.grpc) if a is not None]
        if len(actions) != 1:
            raise SettingsError(
                contract.ENV_APP_PROBES, f"{path}: needs exactly one of httpGet, tcpSocket, grpc"
            )
        probes[path] = probe
    return probes


_DRAIN_RE: Final = re.compile(r"^([0-9]{1,12}(?:\.[0-9]{1,9})?)s$")


def _with_proxy_config(options: AgentOptions, env: Mapping[str, str]) -> AgentOptions:
    """The pod's `proxy.istio.io/config` fields the agent acts on (`concurrency`,
    `terminationDrainDuration`), unless a flag set the same option explicitly."""
    config = _json_object(env, contract.ENV_PROXY_CONFIG, object)
    updates: dict[str, Any] = {}
    concurrency = config.get("concurrency")
    if concurrency is not None and "concurrency" not in options.model_fields_set:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
            raise SettingsError(contract.ENV_PROXY_CONFIG, "concurrency must be a number >= 0")
        updates["concurrency"] = concurrency
    drain = config.get("terminationDrainDuration")
    if drain is not None and "drain_duration" not in options.model_fields_set:
        match = _DRAIN_RE.match(drain) if isinstance(drain, str) else None
        if match is None:
            raise SettingsError(
                contract.ENV_PROXY_CONFIG, f"terminationDrainDuration {drain!r} is not like '5s'"
            )
        updates["drain_duration"] = float(match.group(1))
    if not updates:
        return options
    try:  # validated like the flags, so the same bounds hold whichever set the value
        return AgentOptions.model_validate({**options.model_dump(exclude_unset=True), **updates})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0])
        name = "terminationDrainDuration" if field == "drain_duration" else field
        raise SettingsError(contract.ENV_PROXY_CONFIG, f"{name}: {first['msg']}") from None
