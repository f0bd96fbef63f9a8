"""`mizzen agent bootstrap` and `mizzen agent wait` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
    assert json.loads(as_json.stdout)["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"
    sotw = _mizzen("agent", "bootstrap", "--json", "--xds-api=GRPC", env=pod_env())
    assert json.loads(sotw.stdout)["dynamic_resources"]["ads_config"]["api_type"] == "GRPC"


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


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == contract.READINESS_PATH else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_wait_asks_localhost_directly_even_with_a_proxy_in_the_environment() -> None:
    """proxyMetadata can put HTTP_PROXY into the proxy container: it must not capture the
    agent's own localhost calls."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        proxies = {"HTTP_PROXY": dead, "http_proxy": dead, "ALL_PROXY": dead, "NO_PROXY": ""}
        port = server.server_address[1]
        done = _mizzen("agent", "wait", f"--readiness-port={port}", "--timeout=10", env=proxies)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert done.returncode == 0, done.stderr
