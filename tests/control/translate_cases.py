"""The translation golden cases: `testdata/translate/<case>/` holds `mesh.yaml` (the config
directory's content), `proxy.txt` (the node id asking) and optionally `meshconfig.yaml`;
`golden.json` is the expected translation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from control.config.loader import parse_text
from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate

CASES_DIR = Path(__file__).parent / "testdata" / "translate"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "mesh.yaml").exists())


def translate_case(case: str) -> dict[str, list[dict[str, Any]]]:
    directory = CASES_DIR / case
    documents, problems = parse_text((directory / "mesh.yaml").read_text(), "mesh.yaml")
    assert not problems
    mesh_file = directory / "meshconfig.yaml"
    mesh = (
        MeshConfig.from_mapping(yaml.safe_load(mesh_file.read_text()))
        if mesh_file.exists()
        else None
    )
    state = build_state(documents, mesh)
    assert not state.problems, [str(p) for p in state.problems]
    proxy = parse_node((directory / "proxy.txt").read_text().strip())
    return translate(state, proxy).to_json()


def golden_path(case: str) -> Path:
    return CASES_DIR / case / "golden.json"


def read_golden(case: str) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(golden_path(case).read_text())
    return data


def write_golden(case: str, resources: dict[str, list[dict[str, Any]]]) -> None:
    golden_path(case).write_text(json.dumps(resources, indent=2, sort_keys=False) + "\n")
