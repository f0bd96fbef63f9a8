"""The control plane's manifests: valid Kubernetes objects whose flags `mizzen control` accepts,
and whose RBAC grants every list+watch the Kubernetes source makes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from control.cli import control_cmd
from control.plane.sources.kube_watch import WATCHED_KINDS

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests" / "control-plane"


def _documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


def _one(kind: str) -> dict[str, Any]:
    [document] = [d for d in _documents() if d["kind"] == kind]
    return document


@pytest.mark.parametrize(
    "document", _documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_valid_against_the_kubernetes_schema(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, "1.30", strict=True)


def test_the_deployment_runs_flags_mizzen_control_accepts() -> None:
    [container] = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    parser = argparse.ArgumentParser()
    control_cmd.configure(parser)
    args = parser.parse_args(container["args"][1:])
    assert container["args"][0] == "control"
    assert args.kube
    assert args.tls_cert is not None
    assert args.tls_key is not None


def test_rbac_grants_every_watched_kind() -> None:
    granted = {
        (group, resource)
        for rule in _one("ClusterRole")["rules"]
        if {"list", "watch"} <= set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for kind in WATCHED_KINDS:
        assert (kind.group, kind.plural) in granted, kind


def test_the_control_plane_pods_are_never_injected() -> None:
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["sidecar.istio.io/inject"] == "false"
    assert _one("Namespace")["metadata"]["labels"]["istio-injection"] == "disabled"
