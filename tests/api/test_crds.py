"""The CRDs in manifests/crds: generated from the models, structural, accepted by Kubernetes'
own CustomResourceDefinition schema, and agreeing with the models on every valid case."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from control.api.kinds import VERSIONS
from tests.api.corpus import Case, valid_cases

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_crds", ROOT / "hack" / "gen_crds.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed() -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml"))}


def test_committed_crds_match_the_models() -> None:
    rendered = _generator().render_all()
    committed = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert set(rendered) == set(committed), "run .venv/bin/python hack/gen_crds.py"
    stale = [name for name, text in rendered.items() if committed[name] != text]
    assert not stale, f"{stale} drifted from control/api/models: run hack/gen_crds.py"


@pytest.mark.parametrize("name", sorted(p.name for p in CRD_DIR.glob("*.yaml")))
def test_crd_passes_kubernetes_schema(name: str) -> None:
    crd = yaml.safe_load((CRD_DIR / name).read_text())
    kubernetes_validate.validate(crd, "1.30.0", strict=True)
    group = crd["spec"]["group"]
    assert [v["name"] for v in crd["spec"]["versions"]] == list(VERSIONS[group])
    assert [v["storage"] for v in crd["spec"]["versions"]].count(True) == 1


def _structural_problems(schema: dict[str, Any], path: str) -> list[str]:
    """Kubernetes' structural rules, as far as these schemas use them."""
    problems = []
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return [] if path == ".status" else [f"{path}: preserve-unknown-fields outside status"]
    if "type" not in schema:
        problems.append(f"{path}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties with additionalProperties")
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "nullable"):
        if forbidden in schema:
            problems.append(f"{path}: {forbidden}")
    for key, child in schema.get("properties", {}).items():
        problems += _structural_problems(child, f"{path}.{key}")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _structural_problems(schema["additionalProperties"], f"{path}[*]")
    if "items" in schema:
        problems += _structural_problems(schema["items"], f"{path}[]")
    return problems


@pytest.mark.parametrize("name", sorted(p.name for p in CRD_DIR.glob("*.yaml")))
def test_crd_schema_is_structural(name: str) -> None:
    crd = yaml.safe_load((CRD_DIR / name).read_text())
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        assert _structural_problems(schema, "") == []


_SCHEMAS = {
    (crd["spec"]["group"], crd["spec"]["names"]["kind"]):
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for crd in _committed().values()
}  # fmt: skip


@pytest.mark.parametrize("case", valid_cases(), ids=lambda c: f"{c.file}:{c.name}")
def test_valid_objects_pass_the_crd_schema(case: Case) -> None:
    group = case.obj["apiVersion"].split("/")[0]
    schema = _SCHEMAS[(group, case.obj["kind"])]
    spec = yaml.safe_load(yaml.safe_dump({"spec": case.obj.get("spec", {})}))
    spec["spec"] = _stringify_keys(spec["spec"])
    jsonschema.validate(spec, schema)


def _stringify_keys(node: Any) -> Any:
    """What the apiserver sees: JSON, where map keys are strings."""
    if isinstance(node, dict):
        return {str(k): _stringify_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_keys(v) for v in node]
    return node


def test_crd_schema_refuses_a_wrong_type() -> None:
    schema = _SCHEMAS[("networking.istio.io", "VirtualService")]
    bad = {"spec": {"hosts": ["a"], "http": [{"route": [{"weight": "fifty"}]}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
