"""The new rooms keep the layering of DESIGN.md: the install's rendering is pure (no I/O, no
control-plane code), the leader's election decisions are pure, and neither reaches the webhook
or the CLI (the one composition root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layering import IO_MODULES, ROOT, _imports, _module_name, _top

INSTALL = sorted((ROOT / "control" / "install").glob("*.py"))
LEADER = sorted((ROOT / "control" / "plane" / "leader").glob("*.py"))


@pytest.mark.parametrize("path", INSTALL, ids=_module_name)
def test_the_install_rendering_is_pure(path: Path) -> None:
    imports = _imports(path)
    io = {n for n in imports if _top(n) in IO_MODULES}
    assert not io, f"{_module_name(path)} imports {sorted(io)}"
    reach = {n for n in imports if n.startswith(("control.", "webhook")) and not n.startswith(
        ("control.install", "control.api"))}  # fmt: skip
    assert not reach, f"{_module_name(path)} imports {sorted(reach)}"


@pytest.mark.parametrize("path", LEADER, ids=_module_name)
def test_the_leader_stays_in_the_control_plane(path: Path) -> None:
    bad = {n for n in _imports(path) if _top(n) == "webhook" or n.startswith("control.cli")}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


def test_the_election_decisions_are_pure() -> None:
    lease = ROOT / "control" / "plane" / "leader" / "lease.py"
    assert not {n for n in _imports(lease) if _top(n) in IO_MODULES | {"time", "kubernetes"}}
