"""The Prometheus and Grafana addons: valid Kubernetes objects, dashboards generated from
hack/gen_dashboards.py and shaped as Grafana reads them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.addons.dashboards import ADDONS, DASHBOARDS, ROOT, dashboards, expressions, panels


def _generator() -> Any:
    hack = str(ROOT / "hack")
    if hack not in sys.path:  # the generator imports its sibling grafana_addon.py
        sys.path.insert(0, hack)
    spec = importlib.util.spec_from_file_location(
        "gen_dashboards", ROOT / "hack" / "gen_dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboards_and_grafana_addon_are_the_generated_ones() -> None:
    generator = _generator()
    rendered = generator.render()
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    assert rendered == committed, "run .venv/bin/python hack/gen_dashboards.py"
    grafana = (ADDONS / "grafana.yaml").read_text()
    assert grafana == generator.grafana_manifest(rendered), "run hack/gen_dashboards.py"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize(
    "document",
    [d for name in ("prometheus.yaml", "grafana.yaml") for d in _documents(ADDONS / name)],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_addons_are_valid_kubernetes_objects(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, "1.30", strict=True)


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_dashboards_are_grafana_dashboards(name: str) -> None:
    board = dashboards()[name]
    for key in ("uid", "title", "panels", "schemaVersion", "templating", "time"):
        assert key in board, key
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        assert panel["type"] in ("row", "stat", "timeseries"), panel["type"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs
        assert len(refs) == len(set(refs))
    assert list(expressions(board))


def test_grafana_provisions_the_prometheus_addon_under_the_uid_the_panels_name() -> None:
    [datasources] = [d for d in _documents(ADDONS / "grafana.yaml")
                     if d["metadata"]["name"] == "grafana-datasources"]  # fmt: skip
    config = yaml.safe_load(datasources["data"]["datasources.yaml"])
    [source] = config["datasources"]
    assert (source["uid"], source["type"]) == ("prometheus", "prometheus")
    assert source["url"] == "http://prometheus.mizzen-system:9090"
