"""`mizzen inject` end to end: flags, output formats, exit codes, one-line errors."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from control.cli import inject_cmd
from control.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
TESTDATA = Path(__file__).parent / "testdata"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {traffic.sidecar.istio.io/excludeOutboundPorts: "5432"}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
"""


def _write(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_inject_prints_injected_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", _write(tmp_path, DEPLOYMENT)]) == 0
    out = capsys.readouterr().out
    (document,) = yaml.safe_load_all(out)
    spec = document["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["mizzen-init", "mizzen-proxy"]
    assert "--exclude-outbound-ports=5432" in spec["initContainers"][0]["args"]
    labels = document["spec"]["template"]["metadata"]["labels"]
    assert labels["service.istio.io/canonical-name"] == "web"


def test_patch_applies_to_the_pod_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inject", "--patch", "-f", _write(tmp_path, DEPLOYMENT)]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["target"] == "/spec/template"
    assert entry["injected"] is True
    original = yaml.safe_load(DEPLOYMENT)
    template = jsonpatch.apply_patch(original["spec"]["template"], entry["patch"])
    assert main(["inject", "-f", _write(tmp_path, DEPLOYMENT)]) == 0
    injected = yaml.safe_load(capsys.readouterr().out)
    assert template == injected["spec"]["template"]


def test_explain_names_the_rule_and_the_annotations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, DEPLOYMENT)
    assert main(["inject", "--explain", "--namespace-labels", "", "-f", path]) == 0
    out = capsys.readouterr().out
    assert "Deployment/web): not injected" in out
    assert "namespace shop is not labelled for injection" in out
    assert main(["inject", "--explain", "-f", path]) == 0
    out = capsys.readouterr().out
    assert "injected: namespace shop is labelled istio-injection=enabled" in out
    assert "traffic.sidecar.istio.io/excludeOutboundPorts='5432'" in out


def test_namespace_labels_and_namespace_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n"
    path = _write(tmp_path, pod)
    assert main(["inject", "--patch", "--namespace", "kube-system", "-f", path]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["skipReason"] == "ignored_namespace"
    labels = "istio.io/rev=canary, team=a"
    assert main(["inject", "--patch", "--namespace-labels", labels, "-f", path]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["skipReason"] == "revision_mismatch"


def test_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path, "nativeSidecar: false\nproxyImage: mesh.example/p:1\n", "c.yaml")
    assert main(["inject", "--config", config, "-f", _write(tmp_path, DEPLOYMENT)]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["web", "mizzen-proxy"]
    assert spec["containers"][1]["image"] == "mesh.example/p:1"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("nativeSidecar: perhaps\n", "nativeSidecar"),
        ("noSuchKey: 1\n", "noSuchKey"),
        ("- a list\n", "must be a mapping"),
        ("key: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, message: str
) -> None:
    path = _write(tmp_path, config, "c.yaml")
    assert main(["inject", "--config", path, "-f", _write(tmp_path, DEPLOYMENT)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEPLOYMENT.replace('"5432"', '"54x"'), "document 1 (Deployment/web): traffic."),
        ("a: 1\n---\nb: [\n", "document 2: invalid YAML"),
        ("\xff", None),
        # An alias bomb: 9 lines of YAML, 9**8 values once written out.
        (
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                for p, c in itertools.pairwise("abcdefgh")
            ),
            "document 1: more than 2000000 values",
        ),
        ("a: &a [*a]\n", "document 1: nested too deeply"),
        (
            "kind: Pod\nmetadata: {namespace: [x]}\nspec: {containers: [{name: a}]}\n",
            "metadata.namespace: must be a string",
        ),
    ],
)
def test_bad_input_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str | None
) -> None:
    path = tmp_path / "in.yaml"
    path.write_bytes(text.encode("latin-1") if message is None else text.encode())
    assert main(["inject", "-f", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mizzen inject: ")
    assert captured.err.count("\n") == 1
    assert (message or "not UTF-8") in captured.err


def test_missing_file_and_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(tmp_path / "absent.yaml")]) == 1
    assert "absent.yaml" in capsys.readouterr().err
    path = _write(tmp_path, DEPLOYMENT)
    assert main(["inject", "--namespace-labels", "novalue", "-f", path]) == 2
    assert "--namespace-labels" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["inject", "--patch", "--explain", "-f", path])
    assert exit_info.value.code == 2


def test_stdin_and_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}
    pod["spec"] = {"containers": [{"name": "a", "image": "a:1"}]}
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(pod).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["inject", "-f", "-"]) == 0
    injected = yaml.safe_load(capsys.readouterr().out)
    assert injected["spec"]["initContainers"][1]["name"] == "mizzen-proxy"


def test_warnings_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DEPLOYMENT.replace(
        "labels: {app: web}\n      annotations",
        "labels: {app: web, sidecar.istio.io/inject: maybe}\n      annotations",
    )
    assert main(["inject", "-f", _write(tmp_path, text)]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err
    assert "sidecar.istio.io/inject='maybe'" in captured.err
    assert yaml.safe_load(captured.out)["kind"] == "Deployment"


def test_preview_is_what_demo_calls() -> None:
    out = io.StringIO()
    assert inject_cmd.preview(DEPLOYMENT, source="d.yaml", out=out) == 0
    assert "mizzen-proxy" in out.getvalue()
    patches = io.StringIO()
    assert inject_cmd.preview(DEPLOYMENT, source="d.yaml", out=patches, patch=True) == 0
    assert json.loads(patches.getvalue())[0]["target"] == "/spec/template"


def _big_manifest() -> str:
    """About 1 MB: many Deployments with probes and annotations, and Services between them."""
    base = (TESTDATA / "deployment_probes.yaml").read_text()
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"
    parts = []
    size = 0
    index = 0
    while size < 1_000_000:
        part = base.replace("productpage-v1", f"productpage-{index}") + "---\n" + service
        parts.append(part)
        size += len(part) + 4
        index += 1
    return "---\n".join(parts)


def test_real_process_on_a_1mb_manifest(tmp_path: Path) -> None:
    """The installed console script, as a user runs it (its speed is reported, not asserted:
    the machine is shared; the benchmark and the README give the figure)."""
    path = _write(tmp_path, _big_manifest(), "big.yaml")
    started = time.perf_counter()
    completed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mizzen"), "inject", "-f", path],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    documents = list(yaml.load_all(completed.stdout, Loader=yaml.CSafeLoader))
    deployments = [d for d in documents if d["kind"] == "Deployment"]
    assert len(deployments) > 100
    assert all(
        d["spec"]["template"]["spec"]["initContainers"][1]["name"] == "mizzen-proxy"
        for d in deployments
    )
    print(f"mizzen inject of a 1 MB manifest: {elapsed:.2f} s")


def test_real_process_error_has_no_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, DEPLOYMENT.replace('"5432"', '"70000"'))
    completed = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mizzen"), "inject", "-f", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().endswith("port 70000 is out of range")


KINDS = ["Pod", "Deployment", "CronJob", "List", "Job", "Service", None]
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "metadata",
                    "spec",
                    "template",
                    "jobTemplate",
                    "containers",
                    "name",
                    "items",
                    "annotations",
                    "labels",
                    "initContainers",
                    "kind",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(KINDS), body=values, as_json=st.booleans())
def test_random_documents_give_output_or_one_line(
    kind: str | None, body: Any, as_json: bool
) -> None:
    document = {"kind": kind, **body} if isinstance(body, dict) else body
    text = json.dumps(document) if as_json else yaml.safe_dump(document)
    out, err = io.StringIO(), io.StringIO()
    original_stderr = sys.stderr
    sys.stderr = err
    try:
        status = inject_cmd.preview(text, source="random.yaml", out=out)
    finally:
        sys.stderr = original_stderr
    assert status in (0, 1), err.getvalue()
    if status:
        assert err.getvalue().startswith("mizzen inject: random.yaml: document 1")
        assert err.getvalue().count("\n") == 1
    else:
        written = list(yaml.safe_load_all(out.getvalue()))
        assert len(written) == (0 if document is None else 1)
        if written and isinstance(document, dict):
            assert written[0]["kind"] == document["kind"]


def _workload_env(spec: dict[str, Any]) -> str:
    proxy = next(
        c for c in [*spec.get("initContainers", []), *spec["containers"]]
        if c["name"] == "mizzen-proxy"
    )  # fmt: skip
    return str(next(e["value"] for e in proxy["env"] if e["name"] == "MIZZEN_WORKLOAD_NAME"))


@pytest.mark.parametrize(
    ("kind", "name", "labels", "expected"),
    [
        # A Deployment's ReplicaSet: Istio trims the pod-template-hash (issue 17).
        ("ReplicaSet", "reviews-v1-7f9c8d5b6", {"app": "reviews",
                                                "pod-template-hash": "7f9c8d5b6"}, "reviews-v1"),
        ("ReplicaSet", "standalone", {"app": "reviews"}, "standalone"),
        # A CronJob's Job: the scheduled-time suffix is trimmed.
        ("Job", "backup-28312345", {"app": "backup"}, "backup"),
        ("Job", "migrate", {"app": "migrate"}, "migrate"),
    ],
)  # fmt: skip
def test_the_cli_and_the_webhook_name_the_workload_alike(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    name: str,
    labels: dict[str, str],
    expected: str,
) -> None:
    from injector import InjectionConfig, InjectionContext, inject, workload_name

    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    api = "apps/v1" if kind == "ReplicaSet" else "batch/v1"
    document = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "shop"},
                "spec": {"template": template}}  # fmt: skip
    assert main(["inject", "-f", _write(tmp_path, json.dumps(document))]) == 0
    (out,) = yaml.safe_load_all(capsys.readouterr().out)
    cli_name = _workload_env(out["spec"]["template"]["spec"])

    # The pod that controller makes, as the webhook receives it.
    owner = {"apiVersion": api, "kind": kind, "name": name, "uid": "u", "controller": True}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"generateName": f"{name}-", "namespace": "shop",
                        "labels": labels, "ownerReferences": [owner]},
           "spec": template["spec"]}  # fmt: skip
    context = InjectionContext("shop", None, workload_name=workload_name(pod))
    webhook_pod = inject(pod, context, InjectionConfig()).pod
    assert cli_name == _workload_env(webhook_pod["spec"]) == expected
