"""Model versus Istio's schema: every spec field of Istio's CRDs (tests/api/istio_fields.txt,
written by hack/istio_fields.py) is known to mizzen's models, or listed below with the reason it
is not. A field Istio adds shows up here as a failure, so the gap stays visible."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from control.api.registry import SPEC_MODELS

ROOT = Path(__file__).resolve().parents[2]
FIELDS = Path(__file__).parent / "istio_fields.txt"

# `<Kind> <path>` -> why mizzen's models do not know it (yet). Keep each reason short and true.
KNOWN_GAPS: dict[str, str] = {
    "RequestAuthentication jwtRules[].jwks_uri": (
        "the proto's snake_case spelling, which Istio's CRD lists beside jwksUri: accepted as "
        "every snake_case alias is (tests/api/cases), the models list camelCase names"
    ),
    "VirtualService http[].mirror_percent": (
        "likewise the proto's spelling of mirrorPercent, listed beside it by Istio's CRD"
    ),
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "hack" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _istio_fields() -> list[str]:
    lines = FIELDS.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def _model_fields() -> set[str]:
    """The same walk over the schemas mizzen generates its CRDs from."""
    gen_crds, fields = _load("gen_crds"), _load("istio_fields")
    return {
        f"{kind} {path}"
        for kind, model in SPEC_MODELS.items()
        for path in fields.field_paths(gen_crds.model_schema(model))
    }


def test_every_istio_field_is_modelled_or_a_known_gap() -> None:
    known = _model_fields()
    missing = [line for line in _istio_fields() if line not in known and line not in KNOWN_GAPS]
    assert not missing, "Istio fields the models do not know:\n" + "\n".join(missing)


def test_the_known_gaps_are_still_gaps() -> None:
    """An allow-list entry for a field the models now know (or Istio dropped) is stale."""
    known, istio = _model_fields(), set(_istio_fields())
    stale = [line for line in KNOWN_GAPS if line in known or line not in istio]
    assert not stale


def test_the_data_is_sorted_and_names_validated_kinds() -> None:
    lines = _istio_fields()
    assert lines == sorted(set(lines))
    assert all(line.split(" ", 1)[0] in SPEC_MODELS for line in lines)
    assert len(lines) >= 700  # every validated kind (see the data's header)
    assert {line.split(" ", 1)[0] for line in lines} == set(SPEC_MODELS)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"properties": {"a": {"type": "string"}}}, ["a"]),
        (
            {"properties": {"list": {"type": "array", "items": {"properties": {"x": {}}}}}},
            ["list", "list[].x"],
        ),
        (
            {"properties": {"map": {"additionalProperties": {"properties": {"y": {}}}}}},
            ["map", "map{}.y"],
        ),
        ({"properties": {"labels": {"additionalProperties": {"type": "string"}}}}, ["labels"]),
    ],
)
def test_the_walk(schema: dict[str, Any], expected: list[str]) -> None:
    assert list(_load("istio_fields").field_paths(schema)) == expected


def test_the_script_reads_a_crd_file(tmp_path: Path) -> None:
    """The generator on a CRD document shaped like Istio's: first version's spec, sorted."""
    crd = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  names: {kind: Sidecar}
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        properties:
          spec:
            properties:
              workloadSelector: {properties: {labels: {type: object}}}
              egress: {type: array, items: {properties: {hosts: {type: array}}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  names: {kind: WasmPlugin}
  versions: [{name: v1alpha1, schema: {openAPIV3Schema: {properties: {spec: {}}}}}]
"""
    path = tmp_path / "crds.yaml"
    path.write_text(crd)
    lines = _load("istio_fields").crd_paths(yaml.safe_load_all(path.read_text()))
    assert lines == [
        "Sidecar egress",
        "Sidecar egress[].hosts",
        "Sidecar workloadSelector",
        "Sidecar workloadSelector.labels",
    ]
