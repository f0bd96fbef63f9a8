"""The layering, enforced: pure packages import no I/O, and the webhook sits above
the control plane's API only. Lazy (function-level) imports count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {
    "asyncio", "grpc", "http", "httpx", "kubernetes", "os", "prometheus_client", "shutil",
    "socket", "starlette", "subprocess", "urllib", "uvicorn", "webhook", "ssl", "threading",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package.replace(".", "/")).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


PURE_PACKAGES = ["injector", "control.api"]


def _pure_modules() -> list[Path]:
    paths = [p for pkg in PURE_PACKAGES for p in _modules(pkg)]
    translate = ROOT / "control" / "plane" / "xds" / "translate"
    if translate.is_dir():
        paths += sorted(translate.rglob("*.py"))
    return paths


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: _module_name(p))
def test_pure_packages_do_no_io(path: Path) -> None:
    bad = {name for name in _imports(path) if _top(name) in IO_MODULES or name in IO_MODULES}
    assert not bad, f"{_module_name(path)} is pure but imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("injector"), ids=lambda p: _module_name(p))
def test_injector_stands_alone(path: Path) -> None:
    bad = {n for n in _imports(path) if _top(n) in {"control", "webhook"}}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("control.api"), ids=lambda p: _module_name(p))
def test_mesh_api_depends_on_nothing_else_in_control(path: Path) -> None:
    bad = {
        n for n in _imports(path) if _top(n) == "control" and not _is_under(n, "control.api")
    } | {n for n in _imports(path) if _top(n) == "webhook"}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


_CONTROL_CORE = [p for p in _modules("control") if "cli" not in p.relative_to(ROOT).parts]


@pytest.mark.parametrize("path", _CONTROL_CORE, ids=lambda p: _module_name(p))
def test_control_never_imports_webhook(path: Path) -> None:
    """Only the CLI, the composition root, may put the control plane and the webhook together."""
    bad = {n for n in _imports(path) if _top(n) == "webhook"}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("webhook"), ids=lambda p: _module_name(p))
def test_webhook_uses_only_the_mesh_api_from_control(path: Path) -> None:
    bad = {n for n in _imports(path) if _top(n) == "control" and not _is_under(n, "control.api")}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


def test_the_rules_see_imports() -> None:
    """The checker itself: relative and lazy imports are resolved."""
    sample = ROOT / "injector" / "inject.py"
    assert "injector.config" in _imports(sample)
