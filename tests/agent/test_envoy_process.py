"""How the agent finds and starts Envoy: the binary, its argv, and who it runs as."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control.agent.envoy_binary import EnvoyNotFoundError, find_envoy
from control.agent.envoy_process import envoy_argv, prepare_launch, proxy_identity
from control.agent.settings import AgentOptions, AgentSettings
from tests.agent.conftest import pod_env


def test_the_wheels_binary_is_found_and_is_the_real_envoy() -> None:
    path = find_envoy()
    assert path.name == "envoy"
    assert path.parent.name == "_bin"  # the binary itself, never the venv-bound console script
    assert os.access(path, os.X_OK)


def test_an_explicit_path_must_be_executable(tmp_path: Path) -> None:
    script = tmp_path / "envoy"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(EnvoyNotFoundError, match="--envoy-path"):
        find_envoy(script)
    script.chmod(0o755)
    assert find_envoy(script) == script


def test_argv_without_a_base_id_disables_hot_restart() -> None:
    argv = envoy_argv(Path("/e"), Path("/b.yaml"), AgentOptions(drain_duration=2.5), "10.0.0.1")
    assert argv[:3] == ("/e", "-c", "/b.yaml")
    assert "--disable-hot-restart" in argv
    assert argv[argv.index("--drain-time-s") + 1] == "3"
    assert argv[argv.index("--local-address-ip-version") + 1] == "v4"


def test_argv_with_a_base_id_and_an_ipv6_pod() -> None:
    argv = envoy_argv(Path("/e"), Path("/b"), AgentOptions(base_id=7, concurrency=0), "fd00::7")
    assert argv[argv.index("--base-id") + 1] == "7"
    assert "--disable-hot-restart" not in argv
    assert "--concurrency" not in argv  # 0: Envoy picks one worker per core
    assert argv[argv.index("--local-address-ip-version") + 1] == "v6"


def test_only_root_switches_to_the_proxy_uid() -> None:
    expected = (1337, 1337) if os.geteuid() == 0 else None
    assert proxy_identity(AgentOptions()) == expected
    assert proxy_identity(AgentOptions(proxy_uid=0)) is None


def test_the_bootstrap_is_written_where_the_proxy_uid_can_read_it(tmp_path: Path) -> None:
    settings = AgentSettings.from_env(pod_env(), AgentOptions(config_dir=tmp_path / "proxy"))
    launch = prepare_launch(settings, Path("/usr/bin/envoy"), "0.1.0")
    bootstrap = tmp_path / "proxy" / "envoy-bootstrap.yaml"
    assert bootstrap.read_text().startswith("node:")
    assert bootstrap.stat().st_mode & 0o044 == 0o044
    assert not launch.owns_config_dir
    if launch.run_as is not None:
        assert (bootstrap.stat().st_uid, bootstrap.parent.stat().st_uid) == (1337, 1337)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_an_existing_config_dir_keeps_its_owner(tmp_path: Path) -> None:
    """Only a directory the agent made is handed to the proxy uid."""
    settings = AgentSettings.from_env(pod_env(), AgentOptions(config_dir=tmp_path))
    launch = prepare_launch(settings, Path("/usr/bin/envoy"), "0.1.0")
    assert launch.run_as == (1337, 1337)
    assert tmp_path.stat().st_uid == 0
    assert (tmp_path / "envoy-bootstrap.yaml").stat().st_mode & 0o044 == 0o044
