"""The identity parts' layering: the agent never imports the control plane; the shared identity
pieces import neither; the CA's signing core does no I/O. (The rules of `test_layering.py`,
applied to the identity packages; the same import reader.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_layering import IO_MODULES, ROOT, _imports, _is_under, _module_name, _modules, _top

PURE_CA = ["signer", "material", "refusals", "jwt", "authn"]


@pytest.mark.parametrize("path", _modules("control.agent"), ids=_module_name)
def test_the_agent_never_imports_the_control_plane(path: Path) -> None:
    bad = {n for n in _imports(path) if _is_under(n, "control.plane")}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("control.identity"), ids=_module_name)
def test_shared_identity_pieces_import_neither_side(path: Path) -> None:
    bad = {
        n
        for n in _imports(path)
        if _is_under(n, "control") and not _is_under(n, "control.identity")
    }
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"
    if path.name != "files.py":  # the one module that reads and writes files
        io = {n for n in _imports(path) if _top(n) in IO_MODULES or n in IO_MODULES}
        assert not io, f"{_module_name(path)} is pure but imports {sorted(io)}"


@pytest.mark.parametrize("name", PURE_CA)
def test_the_signing_core_does_no_io(name: str) -> None:
    path = ROOT / "control" / "plane" / "ca" / f"{name}.py"
    io = {n for n in _imports(path) if _top(n) in IO_MODULES or n in IO_MODULES}
    assert not io, f"{_module_name(path)} is pure but imports {sorted(io)}"


@pytest.mark.parametrize("path", _modules("control.plane.ca"), ids=_module_name)
def test_the_ca_never_imports_the_agent(path: Path) -> None:
    bad = {n for n in _imports(path) if _is_under(n, "control.agent")}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"
