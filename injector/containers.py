"""The containers and volumes the injector adds, built as objects (never rendered from text).

`mizzen-init` applies the redirect as root with only NET_ADMIN and NET_RAW, and always runs the
mesh's own image. `mizzen-proxy` runs the agent and Envoy as the proxy uid, non-root, on a
read-only root filesystem, with no capabilities.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from injector import contract
from injector.annotations import PodSettings
from injector.config import InjectionConfig
from injector.pod import Json, canonical_json
from injector.redirect.spec import RedirectSpec


@dataclass(frozen=True)
class ProxyFacts:
    """What the proxy's environment says about this pod, beyond the settings."""

    workload_name: str | None
    labels: Mapping[str, str]
    app_containers: tuple[str, ...]
    pod_ports: tuple[Mapping[str, Any], ...]
    app_probes: Mapping[str, Any]
    prometheus_annotations: str | None = None  # the app's own prometheus.io/*, as JSON


def _resources(settings: PodSettings) -> Json:
    return {kind: dict(values) for kind, values in settings.resources.items()}


# Specs with more list items than this are rendered without the cache (bounded memory).
_CACHED_SPEC_ITEMS: Final = 64


@functools.lru_cache(maxsize=256)
def _cached_args(redirect: RedirectSpec) -> tuple[str, ...]:
    return tuple(redirect.to_args())


def _init_args(redirect: RedirectSpec) -> list[str]:
    """The init container's argv (a new list each time), cached per frozen spec: the pods of a
    mesh share a few specs."""
    items = sum(
        len(values)
        for values in (
            redirect.include_outbound_cidrs or (),
            redirect.exclude_outbound_cidrs,
            redirect.include_outbound_ports,
            redirect.exclude_outbound_ports,
            redirect.include_inbound_ports or (),
            redirect.exclude_inbound_ports,
            redirect.exclude_interfaces,
        )
    )
    if items > _CACHED_SPEC_ITEMS:
        return redirect.to_args()
    return list(_cached_args(redirect))


def init_container(settings: PodSettings, config: InjectionConfig) -> Json:
    return {
        "name": contract.INIT_CONTAINER_NAME,
        "image": config.init_image,
        "imagePullPolicy": config.image_pull_policy,
        "command": list(contract.INIT_COMMAND),
        "args": _init_args(settings.redirect),
        "resources": _resources(settings),
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }


def _field_env(name: str, path: str) -> Json:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _proxy_env(settings: PodSettings, config: InjectionConfig, facts: ProxyFacts) -> list[Json]:
    env = [
        _field_env(contract.ENV_POD_NAME, "metadata.name"),
        _field_env(contract.ENV_POD_NAMESPACE, "metadata.namespace"),
        _field_env(contract.ENV_INSTANCE_IP, "status.podIP"),
        _field_env(contract.ENV_SERVICE_ACCOUNT, "spec.serviceAccountName"),
        _field_env(contract.ENV_NODE_NAME, "spec.nodeName"),
    ]
    metadata = settings.proxy_config.proxy_metadata
    ca_address = config.ca_address or None
    values: list[tuple[str, str | None]] = [
        (contract.ENV_DISCOVERY_ADDRESS, config.discovery_address),
        (contract.ENV_CA_ADDRESS, None if contract.ENV_CA_ADDRESS in metadata else ca_address),
        (contract.ENV_TRUST_DOMAIN, config.trust_domain),
        (contract.ENV_CLUSTER_DOMAIN, config.cluster_domain),
        (contract.ENV_REVISION, config.revision),
        (contract.ENV_WORKLOAD_NAME, facts.workload_name),
        (contract.ENV_LABELS, canonical_json(dict(facts.labels))),
        (contract.ENV_APP_CONTAINERS, ",".join(facts.app_containers)),
        (
            contract.ENV_POD_PORTS,
            canonical_json(list(facts.pod_ports)) if facts.pod_ports else None,
        ),
        (contract.ENV_INTERCEPTION_MODE, settings.redirect.mode.value),
        (contract.ENV_STATUS_PORT, str(settings.status_port)),
        (contract.ENV_APP_PROBES, canonical_json(facts.app_probes) if facts.app_probes else None),
        (contract.ENV_PROXY_CONFIG, canonical_json(dict(settings.proxy_config.raw))),
        (contract.ENV_PROMETHEUS_ANNOTATIONS, facts.prometheus_annotations),
        (contract.ENV_TOKEN_PATH, contract.TOKEN_PATH),
        (contract.ENV_ROOT_CERT_PATH, contract.ROOT_CERT_PATH),
        (contract.ENV_SDS_SOCKET_PATH, contract.SDS_SOCKET_PATH),
        (contract.ENV_ENVOY_CONFIG_DIR, contract.ENVOY_CONFIG_DIR),
    ]
    env += [{"name": name, "value": value} for name, value in values if value is not None]
    env += [{"name": name, "value": metadata[name]} for name in sorted(metadata)]
    return env


def _readiness_get() -> Json:
    return {"path": contract.READINESS_PATH, "port": contract.READINESS_PORT, "scheme": "HTTP"}


def proxy_container(
    settings: PodSettings, config: InjectionConfig, facts: ProxyFacts, *, native: bool
) -> Json:
    container: Json = {
        "name": contract.PROXY_CONTAINER_NAME,
        "image": settings.proxy_image,
        "imagePullPolicy": config.image_pull_policy,
        "command": list(contract.PROXY_COMMAND),
    }
    if native:
        container["restartPolicy"] = "Always"
    container["ports"] = [
        {
            "name": "http-envoy-prom",
            "containerPort": contract.ENVOY_PROMETHEUS_PORT,
            "protocol": "TCP",
        }
    ]
    container["env"] = _proxy_env(settings, config, facts)
    container["resources"] = _resources(settings)
    container["securityContext"] = {
        "runAsUser": config.proxy_uid,
        "runAsGroup": config.proxy_gid,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if settings.status_port != 0:
        readiness = settings.readiness
        probe: Json = {"httpGet": _readiness_get()}
        if readiness["initialDelaySeconds"]:  # 0 is Kubernetes' default: left out
            probe["initialDelaySeconds"] = readiness["initialDelaySeconds"]
        probe["periodSeconds"] = readiness["periodSeconds"]
        probe["timeoutSeconds"] = 3
        probe["failureThreshold"] = readiness["failureThreshold"]
        container["readinessProbe"] = probe
        if native:
            # Holds the user's init and app containers until the proxy is ready.
            container["startupProbe"] = {
                "httpGet": _readiness_get(),
                "periodSeconds": 1,
                "timeoutSeconds": 3,
                "failureThreshold": 600,
            }
    if settings.hold_application and not native:
        container["lifecycle"] = {
            "postStart": {"exec": {"command": list(contract.PROXY_WAIT_COMMAND)}}
        }
    container["volumeMounts"] = [
        {"name": contract.SDS_VOLUME, "mountPath": contract.SDS_DIR},
        {"name": contract.ENVOY_CONFIG_VOLUME, "mountPath": contract.ENVOY_CONFIG_DIR},
        {"name": contract.TOKEN_VOLUME, "mountPath": contract.TOKEN_DIR, "readOnly": True},
        {"name": contract.ROOT_CERT_VOLUME, "mountPath": contract.ROOT_CERT_DIR, "readOnly": True},
    ]
    return container


def volumes(config: InjectionConfig) -> list[Json]:
    return [
        {"name": contract.SDS_VOLUME, "emptyDir": {"medium": "Memory"}},
        {"name": contract.ENVOY_CONFIG_VOLUME, "emptyDir": {}},
        {
            "name": contract.TOKEN_VOLUME,
            "projected": {
                "sources": [
                    {
                        "serviceAccountToken": {
                            "audience": config.token_audience,
                            "expirationSeconds": contract.TOKEN_EXPIRATION_SECONDS,
                            "path": contract.TOKEN_FILE,
                        }
                    }
                ]
            },
        },
        {
            "name": contract.ROOT_CERT_VOLUME,
            "configMap": {"name": config.root_cert_config_map},
        },
    ]
