"""Every shell script of the repository passes shellcheck, and the kind end-to-end script's dry
checks work here (where there is no Docker engine and no kind): the plan, the missing tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KIND_E2E = ROOT / "hack" / "kind-e2e.sh"


def _shell_scripts() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    scripts = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file():
            continue
        bash = path.suffix == "" and path.read_bytes()[:64].startswith(b"#!/usr/bin/env bash")
        if path.suffix == ".sh" or bash:
            scripts.append(path)
    return sorted(scripts)


def test_the_scripts_are_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _shell_scripts()}
    assert {"hack/kind-e2e.sh", "hack/image/build.sh", "hack/setup.sh", ".ci/run"} <= names


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed "
                    "(hack/setup.sh installs Debian's as root)")  # fmt: skip
@pytest.mark.parametrize("script", _shell_scripts(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shellcheck_clean(script: Path) -> None:
    checked = subprocess.run(
        ["shellcheck", "--severity=style", "--external-sources", str(script)],
        cwd=script.parent, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout


def _run(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(KIND_E2E), *args], capture_output=True, text=True, timeout=30,
        check=False, env={"PATH": path, "HOME": os.environ.get("HOME", "/root")},
    )  # fmt: skip


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH with the few tools the script needs before its preflight, and no docker or kind."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("dirname", "sed", "awk"):
        found = shutil.which(tool)
        assert found is not None
        (directory / tool).symlink_to(found)
    return directory


def _fake(directory: Path, name: str, exit_code: int) -> None:
    script = directory / name
    script.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    script.chmod(0o755)


def test_the_dry_run_prints_the_plan(bare_path: Path) -> None:
    done = _run("--dry-run", "--cluster", "c1", path=str(bare_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "kind-e2e plan (cluster c1, image localhost/mizzen:e2e):"
    for needle in ("weighted split", "STRICT mTLS", "AuthorizationPolicy", "metric scraped",
                   "invalid VirtualService", "rollout restart", "proxy-status", "native sidecar",
                   "every pod injected and Ready", "before the policies", "caBundle",
                   "delete the cluster"):  # fmt: skip
        assert any(needle in line for line in lines), needle


def test_no_docker_is_a_clear_exit_3(bare_path: Path) -> None:
    done = _run(path=str(bare_path))
    assert done.returncode == 3
    assert "docker is not installed" in done.stderr


def test_a_stopped_docker_engine_is_a_clear_exit_3(bare_path: Path) -> None:
    _fake(bare_path, "docker", 1)
    done = _run(path=str(bare_path))
    assert done.returncode == 3
    assert "engine is not running" in done.stderr


def test_no_kind_is_a_clear_exit_3(bare_path: Path) -> None:
    _fake(bare_path, "docker", 0)
    done = _run(path=str(bare_path))
    assert done.returncode == 3
    assert "kind is not installed" in done.stderr


def test_no_kubectl_is_a_clear_exit_3(bare_path: Path) -> None:
    _fake(bare_path, "docker", 0)
    _fake(bare_path, "kind", 0)
    done = _run(path=str(bare_path))
    assert done.returncode == 3
    assert "kubectl is not installed" in done.stderr


def test_help_is_the_header(bare_path: Path) -> None:
    done = _run("--help", path=str(bare_path))
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("The mesh on a real Kubernetes cluster (kind)")
    assert lines[-1].endswith("--dry-run prints the plan.")
    assert not any(line.startswith(("set ", "#!")) for line in lines)


@pytest.mark.parametrize("args", [["--bogus"], ["--cluster", "Bad_Name"], ["--cluster"]])
def test_bad_arguments_exit_2(bare_path: Path, args: list[str]) -> None:
    done = _run(*args, path=str(bare_path))
    assert done.returncode in (1, 2) if args == ["--cluster"] else done.returncode == 2
    assert "kind-e2e" in done.stderr or "needs" in done.stderr
