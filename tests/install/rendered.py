"""Rendering helpers for the install tests: the objects of a set of values, found by kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from control.install.render import Inputs, render
from control.install.values import InstallValues, values_from

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"


def crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRD_DIR.glob("*.yaml"))]


def rendered(*sets: str, with_crds: bool = False, **shortcuts: str) -> list[dict[str, Any]]:
    values = values_from(sets, **shortcuts) if sets or shortcuts else InstallValues()
    return render(values, Inputs(crds() if with_crds else ()))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [
        o for o in objects
        if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]  # fmt: skip
    return found


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return found
