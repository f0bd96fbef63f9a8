"""The agent keeps a real Envoy running, as the proxy uid when it is root, and stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agent.conftest import AgentProcess, pod_env, uid_of, wait_for

pytestmark = pytest.mark.envoy

StartAgent = Callable[..., AgentProcess]


def _env_without_control_plane() -> dict[str, str]:
    """A discovery address nobody listens on: Envoy runs, but never gets config."""
    return pod_env(MIZZEN_DISCOVERY_ADDRESS="127.0.0.1:9", INSTANCE_IP="127.0.0.1")


def test_envoy_is_restarted_after_it_dies(start_agent: StartAgent) -> None:
    agent = start_agent(_env_without_control_plane())
    first = agent.wait_envoy()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: agent.envoy_pids() and agent.envoy_pids()[0] != first, timeout=10)
    second = agent.envoy_pids()[0]
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: agent.envoy_pids() and agent.envoy_pids()[0] != second, timeout=10)
    assert agent.process is not None
    assert agent.process.poll() is None
    # The agent logs a start once the spawn returns, a moment after the child shows up.
    wait_for(lambda: "start 3)" in agent.log(), timeout=10)
    log = agent.log()
    assert log.count("envoy exited unexpectedly with -9") == 2, log


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the proxy uid needs root")
def test_root_agent_starts_envoy_as_the_proxy_uid(start_agent: StartAgent) -> None:
    agent = start_agent(_env_without_control_plane())
    envoy = agent.wait_envoy()
    assert uid_of(agent.pid) == 0
    assert uid_of(envoy) == 1337
    gid_line = next(
        line
        for line in Path(f"/proc/{envoy}/status").read_text().splitlines()
        if line.startswith("Gid:")
    )
    assert gid_line.split()[1] == "1337"


def test_not_ready_without_config_from_the_control_plane(start_agent: StartAgent) -> None:
    agent = start_agent(_env_without_control_plane())
    agent.wait_envoy()
    wait_for(lambda: "not LIVE" in agent.readiness()[1], timeout=15)
    time.sleep(1)
    status, reason = agent.readiness()  # and it stays so
    assert status == 503
    assert "not LIVE (state PRE_INITIALIZING)" in reason


def test_sigterm_stops_envoy_and_exits_zero(start_agent: StartAgent) -> None:
    agent = start_agent(_env_without_control_plane(), drain_duration=1.0)
    envoy = agent.wait_envoy()
    started = time.monotonic()
    assert agent.stop() == 0
    assert time.monotonic() - started < 8
    assert not Path(f"/proc/{envoy}").exists()
    bootstrap_dir = re.search(r"bootstrap (\S+),", agent.log())
    assert bootstrap_dir, agent.log()
    assert not Path(bootstrap_dir.group(1)).exists()  # its temp dir is removed


def test_a_killed_agent_takes_its_envoy_with_it(start_agent: StartAgent, tmp_path: Path) -> None:
    """The kernel's parent-death signal: no orphan Envoy keeps the pod's ports."""
    proxy_dir = tmp_path / "proxy"  # a SIGKILLed agent cannot remove a temp dir of its own
    agent = start_agent(_env_without_control_plane(), extra_args=(f"--config-dir={proxy_dir}",))
    envoy = agent.wait_envoy()
    assert (proxy_dir / "envoy-bootstrap.yaml").exists()
    assert agent.process is not None
    agent.process.kill()
    agent.process.wait()
    wait_for(lambda: not Path(f"/proc/{envoy}").exists(), timeout=10)


def test_bad_environment_is_one_clear_line(start_agent: StartAgent) -> None:
    agent = start_agent(pod_env(INSTANCE_IP="not-an-ip"))
    assert agent.process is not None
    assert agent.process.wait(timeout=30) == 2
    log = agent.log()
    assert log.startswith("mizzen agent: INSTANCE_IP:"), log
    assert "Traceback" not in log


def test_a_missing_envoy_binary_is_one_clear_line(start_agent: StartAgent) -> None:
    agent = start_agent(_env_without_control_plane(), extra_args=("--envoy-path=/nonexistent",))
    assert agent.process is not None
    assert agent.process.wait(timeout=30) == 1
    assert (
        agent.log().strip() == "mizzen agent: --envoy-path: /nonexistent is not an executable file"
    )


def test_a_taken_readiness_port_fails_the_agent_before_envoy(start_agent: StartAgent) -> None:
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        agent = start_agent(_env_without_control_plane(), readiness_port=port)
        assert agent.process is not None
        assert agent.process.wait(timeout=30) == 1
    log = agent.log()
    assert "Address already in use" in log
    assert "Traceback" not in log
    assert "envoy started" not in log
