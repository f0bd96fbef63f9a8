"""Shared pieces of the agent's tests: the pod environment, free ports, and an agent process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from injector import contract


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pod_env(**overrides: str) -> dict[str, str]:
    """The proxy container's environment as the injector writes it, for a pod `client-1`."""
    env = {
        contract.ENV_POD_NAME: "client-1",
        contract.ENV_POD_NAMESPACE: "shop",
        contract.ENV_INSTANCE_IP: "10.44.0.7",
        contract.ENV_SERVICE_ACCOUNT: "client",
        contract.ENV_NODE_NAME: "node-a",
        contract.ENV_DISCOVERY_ADDRESS: "10.44.0.1:15010",
        contract.ENV_WORKLOAD_NAME: "client",
        contract.ENV_LABELS: '{"app": "client", "version": "v1"}',
        contract.ENV_APP_CONTAINERS: "app",
        contract.ENV_INTERCEPTION_MODE: "REDIRECT",
    }
    env.update(overrides)
    return env


def free_port() -> int:
    """A port free right now (bound to 0 and released), for processes that must be told one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def comm_of(pid: int) -> str:
    """The process's name, or "" once it is gone (a dead Envoy is reaped at any moment)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def wait_for(predicate: object, timeout: float, interval: float = 0.05) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass
class AgentProcess:
    """`mizzen agent run` as a subprocess on free ports, with its output kept for failures."""

    env: Mapping[str, str]
    drain_duration: float = 1.0
    admin_port: int = field(default_factory=free_port)
    readiness_port: int = field(default_factory=free_port)
    status_port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, log_path: Path) -> AgentProcess:
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "control.cli", "agent", "run",
            f"--admin-port={self.admin_port}", f"--readiness-port={self.readiness_port}",
            f"--status-port={self.status_port}", "--prometheus-port=0",
            f"--drain-duration={self.drain_duration}", "--concurrency=1", *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, **self.env}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""

    def readiness(self) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.readiness_port}{contract.READINESS_PATH}"
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError as error:
            return 0, type(error).__name__
        return response.status_code, response.text.strip()

    def envoy_pids(self) -> list[int]:
        return [p for p in children(self.pid) if "envoy" in comm_of(p)]

    def wait_envoy(self, timeout: float = 10) -> int:
        wait_for(lambda: self.envoy_pids(), timeout)
        return self.envoy_pids()[0]

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("agent did not stop on SIGTERM:\n" + self.log()) from None


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    """Starts agents for a test; each is stopped (and its Envoy with it) at the end."""
    started: list[AgentProcess] = []

    def start(env: Mapping[str, str], **options: Any) -> AgentProcess:
        agent = AgentProcess(env, **options).start(tmp_path / f"agent-{len(started)}.log")
        started.append(agent)
        return agent

    yield start
    failures = []
    for agent in started:  # every agent is stopped, even after one failed to stop cleanly
        if agent.process is not None and agent.process.poll() is None:
            try:
                agent.stop()
            except AssertionError as error:
                failures.append(error)
    if failures:
        raise failures[0]
