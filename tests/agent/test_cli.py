"""`mizzen agent bootstrap` and `mizzen agent wait` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from injector import contract
from tests.agent.conftest import free_port, pod_env


def _mizzen(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "control.cli", *args],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_bootstrap_prints_yaml_and_json() -> None:
    as_yaml = _mizzen("agent", "bootstrap", "--admin-port=16000", env=pod_env())
    as_json = _mizzen("agent", "bootstrap", "--json", "--admin-port=16000", env=pod_env())
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert as_json.returncode == 0, as_json.stderr
    assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout)
    node = json.loads(as_json.stdout)["node"]
    assert node["id"] == "sidecar~10.44.0.7~client-1.shop~shop.svc.cluster.local"


def test_bootstrap_names_a_bad_flag_or_variable() -> None:
    flag = _mizzen("agent", "bootstrap", "--admin-port=0", env=pod_env())
    variable = _mizzen("agent", "bootstrap", env=pod_env(**{contract.ENV_LABELS: "[]"}))
    assert (flag.returncode, variable.returncode) == (2, 2)
    assert flag.stderr.startswith("mizzen agent: --admin-port: ")
    assert variable.stderr == "mizzen agent: MIZZEN_LABELS: must be a JSON object\n"


def test_wait_gives_up_with_the_reason() -> None:
    done = _mizzen("agent", "wait", f"--readiness-port={free_port()}", "--timeout=0.5", env={})
    assert done.returncode == 1
    assert "proxy not ready after 0.5s: ConnectError" in done.stderr
