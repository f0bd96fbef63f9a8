"""The control plane's workload: its settings ConfigMaps, Deployment, Service and
PodDisruptionBudget. Every replica serves xDS, the CA and the webhooks; the leader among them
(a Lease) also runs the singleton duties."""

from __future__ import annotations

from typing import Any, Final

import yaml

from control.install import args
from control.install.names import (
    INJECTION_CONFIG_KEY,
    MESH_CONFIG_KEY,
    ROOT_CERT_CONFIG_MAP,
    TOKEN_AUDIENCE,
    Names,
)
from control.install.values import InstallValues
from injector.config import InjectionConfig

PROXY_UID: Final = 1337
CONTAINER: Final = "control"


def injection_config(values: InstallValues) -> InjectionConfig:
    """The injector's settings for this install: every cross-reference from the install."""
    names = Names.of(values)
    proxy = values.proxy
    return InjectionConfig(
        proxy_image=values.image,
        init_image=values.image,
        image_pull_policy=values.image_pull_policy,
        discovery_address=names.discovery_address(args.SECURE_PORT),
        ca_address=names.discovery_address(args.CA_PORT),
        trust_domain=values.trust_domain,
        cluster_domain=values.cluster_domain,
        native_sidecar=proxy.native_sidecar,
        revision=values.revision,
        mesh_namespace=values.namespace,
        token_audience=TOKEN_AUDIENCE,
        root_cert_config_map=ROOT_CERT_CONFIG_MAP,
        hold_application_until_proxy_starts=proxy.hold_application_until_proxy_starts,
        proxy_cpu=proxy.cpu,
        proxy_memory=proxy.memory,
        proxy_cpu_limit=proxy.cpu_limit,
        proxy_memory_limit=proxy.memory_limit,
    )


def mesh_config(values: InstallValues) -> dict[str, Any]:
    """Istio's MeshConfig keys that mizzen reads; the root namespace is the install's."""
    return {
        "rootNamespace": values.namespace,
        "trustDomain": values.trust_domain,
        "clusterDomain": values.cluster_domain,
        "outboundTrafficPolicy": {"mode": values.mesh.outbound_traffic_policy.mode},
    }


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def config_maps(values: InstallValues, labels: dict[str, str]) -> list[dict[str, Any]]:
    names = Names.of(values)
    injection = injection_config(values).model_dump(mode="json", by_alias=True)
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": names.mesh_config, "namespace": names.namespace, "labels": labels},
            "data": {MESH_CONFIG_KEY: _dump(mesh_config(values))},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": names.injection_config,
                "namespace": names.namespace,
                "labels": labels,
            },
            "data": {INJECTION_CONFIG_KEY: _dump(injection)},
        },
    ]


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _container(values: InstallValues) -> dict[str, Any]:
    resources = values.control_plane.resources
    field = {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    namespace_field = {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    return {
        "name": CONTAINER,
        "image": values.image,
        "imagePullPolicy": values.image_pull_policy,
        "args": args.control_plane_args(values, MESH_CONFIG_KEY, INJECTION_CONFIG_KEY),
        "env": [
            {"name": "POD_NAME", "valueFrom": field},
            {"name": "POD_NAMESPACE", "valueFrom": namespace_field},
        ],
        "ports": [
            _port("grpc-xds-tls", args.SECURE_PORT),
            _port("grpc-ca-tls", args.CA_PORT),
            _port("https-webhook", args.WEBHOOK_PORT),
            _port("http-monitoring", args.MONITORING_PORT),
        ],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": args.MONITORING_PORT},
            "initialDelaySeconds": 1,
            "periodSeconds": 3,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": resources.cpu, "memory": resources.memory},
            "limits": {"memory": resources.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "mesh-config", "mountPath": args.MESH_CONFIG_DIR, "readOnly": True},
            {"name": "injection-config", "mountPath": args.INJECTION_CONFIG_DIR, "readOnly": True},
            {"name": "webhook-tls", "mountPath": args.WEBHOOK_CERT_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (a private emptyDir)
        ],
    }


def deployment(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    names = Names.of(values)
    selector = names.selector
    pod_labels = {**labels, **selector, "sidecar.istio.io/inject": "false"}
    memory_volume = {"emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.control_plane, "namespace": names.namespace, "labels": labels},
        "spec": {
            "replicas": values.control_plane.replicas,
            "selector": {"matchLabels": selector},
            # One new replica ready before an old one goes: proxies always have somewhere to go.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": names.control_plane,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PROXY_UID,
                        "runAsGroup": PROXY_UID,
                        "fsGroup": PROXY_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": selector},
                                        "topologyKey": "kubernetes.io/hostname",
                                    },
                                }
                            ]
                        }
                    },
                    "terminationGracePeriodSeconds": (
                        values.control_plane.termination_grace_period_seconds
                    ),
                    "containers": [_container(values)],
                    "volumes": [
                        {"name": "mesh-config", "configMap": {"name": names.mesh_config}},
                        {"name": "injection-config", "configMap": {"name": names.injection_config}},
                        {"name": "webhook-tls", **memory_volume},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
        },
    }


def service(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    """The one Service: xDS (mutual TLS) and the CA (TLS) for the proxies, the webhooks for the
    API server, the monitoring port for Prometheus."""
    names = Names.of(values)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.control_plane, "namespace": names.namespace, "labels": labels},
        "spec": {
            "selector": names.selector,
            "ports": [
                {
                    "name": "grpc-xds-tls",
                    "port": args.SECURE_PORT,
                    "targetPort": args.SECURE_PORT,
                    "protocol": "TCP",
                },
                {
                    "name": "grpc-ca-tls",
                    "port": args.CA_PORT,
                    "targetPort": args.CA_PORT,
                    "protocol": "TCP",
                },
                {
                    "name": "https-webhook",
                    "port": args.WEBHOOK_SERVICE_PORT,
                    "targetPort": args.WEBHOOK_PORT,
                    "protocol": "TCP",
                },
                {
                    "name": "http-monitoring",
                    "port": args.MONITORING_PORT,
                    "targetPort": args.MONITORING_PORT,
                    "protocol": "TCP",
                },
            ],
        },
    }


def disruption_budget(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    """At most one replica evicted at a time; never blocks a node drain, even with one."""
    names = Names.of(values)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": names.control_plane, "namespace": names.namespace, "labels": labels},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": names.selector}},
    }


def namespace(values: InstallValues, labels: dict[str, str]) -> dict[str, Any]:
    """The mesh's namespace, shared by its revisions; never injected."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": values.namespace, "labels": {**labels, "istio-injection": "disabled"}},
    }
