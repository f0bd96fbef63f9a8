"""`mizzen control` with a certificate serves the admission webhooks from the same process as
xDS (as istiod does): a real pod review over real TLS gets a patch; a mesh object is validated;
the replica is not ready (`/ready` on the debug port, the Deployment's probe) while its webhook
certificate is unusable, since the Service would route admission reviews to it."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.control.control_process import control_process
from tests.webhook.samples import mesh_review, pod_review, virtual_service
from webhook import devcerts

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"


def _start(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "control.cli", "control", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serves_xds_and_the_webhooks_in_one_process(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(DATA / "mesh.yaml", config / "mesh.yaml")
    certs = devcerts.issue(tmp_path / "certs", ["localhost"])
    with control_process(
        "--config-dir", str(config), "--webhook-port", "0",
        "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
    ) as control:  # fmt: skip
        base = control.url("webhook", scheme="https")
        tls = ssl.create_default_context(cafile=str(certs.ca_file))
        with httpx.Client(verify=tls, trust_env=False, timeout=10) as http:
            assert http.get(f"{base}/readyz").status_code == 200
            answer = http.post(f"{base}/inject", json=pod_review()).json()["response"]
            assert answer["allowed"] is True
            patch = json.loads(base64.b64decode(answer["patch"]))
            assert any("mizzen-proxy" in json.dumps(op) for op in patch)
            bad = virtual_service()
            bad["spec"]["http"][0]["route"][0]["weight"] = -1
            refused = http.post(f"{base}/validate", json=mesh_review(bad)).json()["response"]
            assert refused["allowed"] is False
            assert "weight" in refused["status"]["message"]
        control.stop_cleanly()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "x.pem"], "both --tls-cert and --tls-key"),
        (["--injection-config", "c.yaml"], "--injection-config needs --tls-cert"),
        (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], "--tls-cert/--tls-key"),
    ],
)
def test_bad_webhook_flags_are_one_line(tmp_path: Path, flags: list[str], message: str) -> None:
    with _start("--config-dir", str(tmp_path), *flags) as process:
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert message in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("expired", [False, True])
def test_not_ready_without_a_valid_webhook_certificate(tmp_path: Path, expired: bool) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(DATA / "mesh.yaml", config / "mesh.yaml")
    age = devcerts.VALIDITY + timedelta(days=1) if expired else timedelta()
    issued_at = datetime.now(UTC) - age
    certs = devcerts.issue(tmp_path / "certs", ["localhost"], clock=lambda: issued_at)
    with control_process(
        "--config-dir", str(config), "--webhook-port", "0",
        "--tls-cert", str(certs.cert_file), "--tls-key", str(certs.key_file),
    ) as control:  # fmt: skip
        # The plane itself is up either way (xDS served, the first state built).
        with httpx.Client(trust_env=False, timeout=10) as http:
            ready = http.get(f"{control.url('debug')}/ready")
            assert http.get(f"{control.url('debug')}/debug/configz").status_code == 200
        assert ready.status_code == (503 if expired else 200), ready.text
        control.stop_cleanly()
