"""Reading the committed Grafana dashboards: their panels' PromQL and their variables."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = ROOT / "manifests" / "addons" / "grafana" / "dashboards"
ADDONS = ROOT / "manifests" / "addons"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every query of every panel."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def variables(board: dict[str, Any]) -> list[str]:
    return [v["name"] for v in board.get("templating", {}).get("list", [])]


def substitute(expr: str, bindings: dict[str, str], rate: str = "1m") -> str:
    text = expr.replace("$__rate_interval", rate).replace("$__interval", rate)
    for name, value in bindings.items():
        text = text.replace(f"${name}", value)
    return text
