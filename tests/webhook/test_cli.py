"""`mizzen webhook` as a process: development certificates, bad input, serving, memory."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest
from cryptography import x509

from control.cli.main import main
from tests.proc_memory import rss_bytes
from tests.webhook.samples import body, pod_review, review
from webhook import devcerts

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


Mizzen = Callable[..., Outcome]


@pytest.fixture
def mizzen(capsys: pytest.CaptureFixture[str]) -> Mizzen:
    """`mizzen webhook ARGS` run in-process (the commands that do not serve)."""

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        status = main(["webhook", *args])
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


def test_dev_certs_prints_the_ca_bundle_and_keeps_it(tmp_path: Path, mizzen: Mizzen) -> None:
    first = mizzen("--dev-certs", str(tmp_path), "--no-serve")
    assert first.returncode == 0, first.stderr
    bundle = first.stdout.strip()
    assert base64.b64decode(bundle) == (tmp_path / "ca.crt").read_bytes()
    assert (tmp_path / "tls.key").stat().st_mode & 0o777 == 0o600
    again = mizzen("--dev-certs", str(tmp_path), "--no-serve")
    assert again.stdout.strip() == bundle
    serving = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {
        "localhost",
        "mizzen.mizzen-system.svc",
        "mizzen.mizzen-system.svc.cluster.local",
    } <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)


def test_dev_certs_about_to_expire_are_replaced(tmp_path: Path, mizzen: Mizzen) -> None:
    ca_cert, ca_key = devcerts.load_ca(devcerts.issue(tmp_path, ["localhost"]).ca_file.parent)
    now = datetime.now(UTC)
    cert, key = devcerts.issue_serving(
        ca_cert,
        ca_key,
        ["localhost"],
        [],
        now=now - timedelta(days=30),
        validity=timedelta(days=30, hours=1),
    )
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    old_bundle = base64.b64encode((tmp_path / "ca.crt").read_bytes()).decode()
    result = mizzen("--dev-certs", str(tmp_path), "--no-serve")
    assert result.returncode == 0
    assert result.stdout.strip() != old_bundle
    assert devcerts.existing(tmp_path) is not None


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        ([], 2, "needs --tls-cert and --tls-key, or --dev-certs"),
        (["--tls-cert", "/nonexistent/tls.crt", "--tls-key", "/nonexistent/tls.key"], 1,
         "cannot read /nonexistent/tls.crt"),
        (["--no-serve"], 2, "--no-serve goes with --dev-certs"),
        (["--config", "/nonexistent.yaml", "--no-serve"], 2, "--config /nonexistent.yaml"),
        (["--port", "70000", "--tls-cert", "a", "--tls-key", "b"], 2, "--port"),
    ],
    ids=["no-cert", "missing-cert", "no-serve-alone", "missing-config", "bad-port"],
)  # fmt: skip
def test_bad_usage_is_one_clear_line(
    mizzen: Mizzen, args: list[str], status: int, says: str
) -> None:
    result = mizzen(*args)
    assert result.returncode == status
    assert says in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "says"),
    [("proxyImage: [1, 2\n", "invalid YAML"), ("- a\n", "must be a mapping"),
     ("noSuchSetting: 1\n", "noSuchSetting"), ("proxyUid: lots\n", "proxyUid")],
)  # fmt: skip
def test_a_bad_config_is_named(tmp_path: Path, mizzen: Mizzen, text: str, says: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    result = mizzen("--config", str(config), "--dev-certs", str(tmp_path / "c"), "--no-serve")
    assert result.returncode == 2
    assert f"--config {config}" in result.stderr
    assert says in result.stderr


class ServerProcess:
    def __init__(self, process: subprocess.Popen[str], port: int, ca_file: Path) -> None:
        self.process = process
        self.port = port
        self.ca_file = ca_file
        self.log: list[str] = []
        assert process.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.append(line)

    def stopped_log(self) -> str:
        self._reader.join(timeout=10)
        return "".join(self.log)

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=self.ca_file)
        return httpx.Client(base_url=f"https://localhost:{self.port}", verify=context, timeout=30)

    def rss_bytes(self) -> int:
        return rss_bytes(self.process.pid)


@pytest.fixture
def webhook_process(tmp_path: Path) -> Iterator[ServerProcess]:
    config = tmp_path / "config.yaml"
    config.write_text("proxyImage: registry.example/mizzen:test\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "control.cli", "webhook", "--dev-certs", str(tmp_path / "certs"),
         "--port", "0", "--host", "127.0.0.1", "--config", str(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield _started(process, tmp_path / "certs" / "ca.crt")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _started(process: subprocess.Popen[str], ca_file: Path) -> ServerProcess:
    """Wait for the process to report its port, then to be ready."""
    assert process.stderr is not None
    port = 0
    while not port:
        line = process.stderr.readline()
        assert line, "the webhook exited before serving"
        found = re.search(r"serving the admission webhooks on https://[\d.]+:(\d+)", line)
        port = int(found.group(1)) if found else 0
    server = ServerProcess(process, port, ca_file)
    with server.client() as client:
        for _ in range(100):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
    return server


def test_serves_reviews_with_its_config_and_stops_on_sigterm(
    webhook_process: ServerProcess,
) -> None:
    with webhook_process.client() as client:
        reply = client.post("/inject", content=body(pod_review()),
                            headers={"content-type": "application/json"})  # fmt: skip
    response = reply.json()["response"]
    assert response["allowed"] is True
    patch = json.loads(base64.b64decode(response["patch"]))
    assert "registry.example/mizzen:test" in json.dumps(patch)
    webhook_process.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then lets the signal's default action end the process.
    assert webhook_process.process.wait(timeout=15) in (0, -signal.SIGTERM)
    assert "Finished server process" in webhook_process.stopped_log()


def test_memory_stays_bounded_under_hostile_bodies(webhook_process: ServerProcess) -> None:
    """Bodies that balloon when parsed, oversized and endless bodies: the webhook's memory does
    not grow with their number."""
    ballooning = b"[" + b",".join([b"{}"] * (2 * MIB - 1)) + b"]"  # ~6 MiB of empty objects
    in_a_review = body(review([{}] * 1_400_000))  # a review of ~5.6 MiB of empty objects
    oversized = b" " * (16 * MIB)
    headers = {"content-type": "application/json"}

    def hostile_round(client: httpx.Client) -> None:
        assert client.post("/inject", content=ballooning, headers=headers).status_code == 400
        assert client.post("/inject", content=oversized, headers=headers).status_code == 413
        refused = client.post("/inject", content=in_a_review, headers=headers)
        assert refused.json()["response"]["allowed"] is False

    with webhook_process.client() as client:
        for _ in range(2):
            hostile_round(client)
        settled = webhook_process.rss_bytes()
        for _ in range(6):  # before the fix in webhook.app._answer: ~150 MiB more each
            hostile_round(client)
        grown = webhook_process.rss_bytes() - settled
        assert client.get("/healthz").status_code == 200
    assert grown < 64 * MIB, f"RSS grew by {grown / MIB:.0f} MiB"
