"""The layering, enforced: pure packages import no I/O; the webhook sits above the control
plane's API (and the shared serving helper) only; the agent and the redirect never import the
control plane; translation never imports the config sources; only the CLI assembles processes;
and no import circles. Lazy (function-level) imports count too."""

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


PURE_PACKAGES = ["injector", "control.api", "control.plane.model", "control.plane.xds.translate"]


def _pure_modules() -> list[Path]:
    return [p for pkg in PURE_PACKAGES for p in _modules(pkg)]


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
def test_webhook_uses_only_the_mesh_api_and_serving_from_control(path: Path) -> None:
    allowed = ("control.api", "control.serving", "control.logsafe", "control.config.files")
    bad = {
        n for n in _imports(path)
        if _top(n) == "control" and not any(_is_under(n, a) for a in allowed)
    }  # fmt: skip
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


OUTSIDE_THE_PLANE = _modules("control.agent") + _modules("control.redirect")


@pytest.mark.parametrize("path", OUTSIDE_THE_PLANE, ids=lambda p: _module_name(p))
def test_agent_and_redirect_never_import_the_control_plane(path: Path) -> None:
    """They run in the pod's containers; the control plane is another process."""
    bad = {
        n for n in _imports(path) if _is_under(n, "control.plane") or _is_under(n, "control.cli")
    }
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "path", _modules("control.plane.xds.translate"), ids=lambda p: _module_name(p)
)
def test_translation_never_imports_the_sources(path: Path) -> None:
    bad = {n for n in _imports(path) if _is_under(n, "control.plane.sources")}
    assert not bad, f"{_module_name(path)} imports {sorted(bad)}"


# Composing a process = putting a config source together with servers. Checkably: a module that
# imports a source implementation and a server is a composition root, and only `control.cli`
# (with the benchmark's own baseline) may be one; nothing outside the sources themselves and the
# CLI even imports a source implementation.
SOURCE_IMPLEMENTATIONS = ("control.plane.sources.file", "control.plane.sources.kube")
SERVERS = ("control.serving", "webhook.server", "grpc", "uvicorn")
COMPOSERS = ("control.cli", "hack.bench")


def _all_modules() -> list[Path]:
    return [p for pkg in ("control", "webhook", "injector", "hack") for p in _modules(pkg)]


@pytest.mark.parametrize("path", _all_modules(), ids=lambda p: _module_name(p))
def test_only_the_cli_composes_processes(path: Path) -> None:
    name = _module_name(path)
    if any(_is_under(name, c) for c in COMPOSERS):
        return
    imports = _imports(path)
    sources = {n for n in imports if any(_is_under(n, s) for s in SOURCE_IMPLEMENTATIONS)}
    servers = {n for n in imports if any(_is_under(n, s) for s in SERVERS)}
    assert not (sources and servers), f"{name} composes {sorted(sources | servers)}"
    if not _is_under(name, "control.plane.sources"):
        assert not sources, f"{name} imports the source implementations {sorted(sources)}"


def _resolve(name: str, known: set[str]) -> str | None:
    """The module of ours an imported name stands for (`from a.b import c`: `a.b.c` when it is
    a module, else `a.b`)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _import_edges(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ours `path` imports: `from package import module` stands for the
    module (not the package's `__init__`), `from module import name` for the module."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            edges |= {r for a in node.names if (r := _resolve(a.name, known))}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - node.level + 1]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                target = child if child in known else _resolve(base, known)
                if target:
                    edges.add(target)
    return edges


def test_no_import_circles() -> None:
    """Tarjan's strongly connected components over every import of ours, lazy ones included."""
    paths = {_module_name(p): p for p in _all_modules()}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        graph[name] = {t for t in _import_edges(path, name, known) if t != name}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_the_rules_see_imports() -> None:
    """The checker itself: relative and lazy imports are resolved."""
    sample = ROOT / "injector" / "inject.py"
    assert "injector.config" in _imports(sample)
