"""The rendered install: valid Kubernetes objects, the committed manifests/ in step with the
renderer, and the properties an operator relies on (spread, budget, limits, restricted pods)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from control.cli.main import main
from tests.install.crd_files import CRD_FILES
from tests.install.rendered import ROOT, container, one, rendered

CANARY = ("controlPlane.replicas=3", "proxy.nativeSidecar=false", "webhook.failurePolicy=Ignore")


def _all_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for label, objects in (("default", rendered()), ("canary", rendered(*CANARY, revision="c1"))):
        found += [(f"{label}:{o['kind']}/{o['metadata']['name']}", o) for o in objects]
    return found


@pytest.mark.parametrize(
    ("name", "document"), _all_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_valid_against_the_kubernetes_schema(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, "1.30", strict=True)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_manifests", ROOT / "hack" / "gen_manifests.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_manifests_match_the_renderer() -> None:
    for path, text in _generator().render_files().items():
        assert path.read_text() == text, (
            f"{path} drifted: run .venv/bin/python hack/gen_manifests.py"
        )


def test_the_drift_check_can_fail(tmp_path: Path) -> None:
    generator = _generator()
    stale = tmp_path / "mizzen.yaml"
    stale.write_text("# edited by hand\n")
    generator.INSTALL = stale
    assert generator.main(["--check"]) == 1


def test_the_kustomization_holds_the_crds_and_the_install() -> None:
    kustomization = yaml.safe_load((ROOT / "manifests" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    crds = {f"crds/{p.name}" for p in (ROOT / "manifests" / "crds").glob("*.yaml")}
    assert listed == crds | {"install/mizzen.yaml"}
    for entry in listed:
        assert (ROOT / "manifests" / entry).is_file()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_kustomize_builds_the_whole_install() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "manifests")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(built.stdout) if d)
    expected = sorted(o["kind"] for o in rendered(with_crds=True))
    assert kinds == expected


def test_manifest_generate_prints_the_install_with_the_crds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["manifest", "generate", "--revision", "canary", "--set", "controlPlane.replicas=3"])
        == 0
    )
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in documents].count("CustomResourceDefinition") == len(CRD_FILES)
    assert one(documents, "Deployment")["spec"]["replicas"] == 3
    assert one(documents, "Deployment")["metadata"]["name"] == "mizzen-canary"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "controlPlane.replica=3"], "unknown key 'controlPlane.replica'"),
        (["--set", "addons=nope"], "no addon named 'nope'"),
        (["--crds-dir", "/nonexistent"], "--crds-dir /nonexistent: no such directory"),
    ],
)
def test_manifest_generate_refuses_bad_input(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "generate", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_addons_are_rendered_from_their_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    addon = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "dash", "namespace": "mizzen-system"}}  # fmt: skip
    (tmp_path / "grafana.yaml").write_text(yaml.safe_dump(addon))
    argv = ["manifest", "generate", "--no-crds", "--addons-dir", str(tmp_path)]
    assert main([*argv, "--set", "addons=grafana"]) == 0
    assert addon in list(yaml.safe_load_all(capsys.readouterr().out))
    assert main(argv) == 0
    assert addon not in list(yaml.safe_load_all(capsys.readouterr().out))


def test_the_control_plane_spreads_and_survives_disruption() -> None:
    objects = rendered()
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    budget = one(objects, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"] == selector
    assert budget["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_the_control_plane_pod_is_restricted() -> None:
    """Kubernetes' `restricted` Pod Security Standard, field by field."""
    objects = rendered()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    control = container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert control["securityContext"]["allowPrivilegeEscalation"] is False
    assert control["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert control["securityContext"]["readOnlyRootFilesystem"] is True
    assert "hostNetwork" not in pod
    assert all("hostPath" not in v for v in pod["volumes"])
    assert control["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert control["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 15014}


def test_the_ca_bundle_is_left_to_the_leader() -> None:
    """Not rendered, so a second apply never owns (nor wipes) what the leader patched in."""
    objects = rendered()
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for webhook in one(objects, kind)["webhooks"]:
            assert "caBundle" not in webhook["clientConfig"]


def test_rendering_is_deterministic() -> None:
    assert rendered(*CANARY, revision="c1") == rendered(*CANARY, revision="c1")
