"""The image builds the wheel from what its Dockerfile copies: every path the wheel force-includes
(pyproject.toml) must be copied, or the build fails only when the image is built (CI, slow)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _copied_sources() -> set[str]:
    dockerfile = (ROOT / "hack" / "image" / "Dockerfile").read_text()
    return {m.group(1) for m in re.finditer(r"^COPY (?!--)(\S+) \./", dockerfile, re.MULTILINE)}


def test_every_force_included_path_is_copied_into_the_build_stage() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    force_included = set(wheel.get("force-include", {}))
    copied = _copied_sources()
    assert force_included, "pyproject.toml force-includes nothing: update this test"
    missing = {
        path
        for path in force_included
        if not any(path == c or path.startswith(c + "/") for c in copied)
    }
    assert not missing, f"hack/image/Dockerfile does not COPY {sorted(missing)}"


def test_every_wheel_package_is_copied_into_the_build_stage() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"].get("packages", [])
    assert set(packages) <= _copied_sources()
