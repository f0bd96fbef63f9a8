"""Pods, mesh resources and AdmissionReviews as the API server sends them."""

from __future__ import annotations

import copy
import json
from typing import Any


def deployment_pod(name: str = "reviews-v1", namespace: str | None = None) -> dict[str, Any]:
    """A pod made by a Deployment's ReplicaSet: only `generateName`, no namespace."""
    template_hash = "5f7c9d8b6"
    metadata: dict[str, Any] = {
        "generateName": f"{name}-{template_hash}-",
        "labels": {"app": name.split("-")[0], "version": "v1", "pod-template-hash": template_hash},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{name}-{template_hash}",
                "uid": "6a1f3c2e-0000-4000-8000-000000000001",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "serviceAccountName": "bookinfo-reviews",
            "containers": [
                {
                    "name": "reviews",
                    "image": "docker.io/istio/examples-bookinfo-reviews-v1:1.20.2",
                    "ports": [{"containerPort": 9080, "protocol": "TCP"}],
                    "env": [{"name": "LOG_DIR", "value": "/tmp/logs"}],
                    "readinessProbe": {"httpGet": {"path": "/health", "port": 9080}},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
        },
    }


def review(
    obj: Any,
    *,
    uid: str = "0d4b5c1e-7a0f-4b8e-9a51-8f3c2d1e0a01",
    namespace: str = "bookinfo",
    operation: str = "CREATE",
    kind: tuple[str, str, str] = ("", "v1", "Pod"),
    resource: str = "pods",
    dry_run: bool = False,
) -> dict[str, Any]:
    group, version, kind_name = kind
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind_name},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind_name},
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj,
            "oldObject": None,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def pod_review(pod: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return review(deployment_pod() if pod is None else pod, **kwargs)


def body(document: Any) -> bytes:
    return json.dumps(document).encode()


def virtual_service(weight: int = 100) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "bookinfo"},
        "spec": {
            "hosts": ["reviews"],
            "http": [
                {"route": [{"destination": {"host": "reviews", "subset": "v1"}, "weight": weight}]}
            ],
        },
    }


def mesh_review(obj: dict[str, Any], operation: str = "CREATE", **kwargs: Any) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].partition("/")
    resource = obj["kind"].lower() + "s"
    return review(
        obj, operation=operation, kind=(group, version, obj["kind"]), resource=resource, **kwargs
    )


def big_pod(target_bytes: int = 3 * 1024 * 1024) -> dict[str, Any]:
    """A pod of about `target_bytes` of JSON: many env vars, a big annotation, managedFields."""
    pod = copy.deepcopy(deployment_pod())
    container = pod["spec"]["containers"][0]
    container["env"] = [{"name": f"SETTING_{i}", "value": "x" * 40} for i in range(4000)]
    pod["metadata"]["managedFields"] = [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {f"f:env{i}": {} for i in range(2000)}},
        }
    ]
    used = len(json.dumps(pod))
    pod["metadata"].setdefault("annotations", {})["example.com/blob"] = "b" * max(
        0, target_bytes - used - 100
    )
    return pod
