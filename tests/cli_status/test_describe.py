"""`mizzen describe pod`: the effective mTLS per port with the policy that set it, and the TLS
meshed clients use, read from a config directory."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from control.cli.demo.sample import write_documents
from control.cli.main import main
from tests.e2e.mtls_mesh import destination_rule, peer_authentication, workloads


def _config(tmp_path: Path, *policies: dict[str, Any]) -> Path:
    pods = [SimpleNamespace(ip=f"10.0.0.{i}") for i in (1, 2, 3)]
    write_documents(tmp_path / "workloads.yaml", workloads(*pods))  # type: ignore[arg-type]
    if policies:
        write_documents(tmp_path / "security.yaml", list(policies))
    return tmp_path


def _describe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["describe", "pod", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_modes_per_port_with_their_sources_and_the_client_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(
        tmp_path,
        peer_authentication("all", "STRICT"),
        peer_authentication("server", None, {"app": "server"}, {8080: "DISABLE"}),
        destination_rule("ISTIO_MUTUAL"),
    )
    code, out, _ = _describe(capsys, "server.secure", f"--config-dir={config}", "-o", "json")
    assert code == 0
    view = json.loads(out)
    assert view["mtls"] == {"mode": "STRICT", "source": "secure/all (namespace)"}
    assert view["peerAuthentications"] == ["secure/all", "secure/server"]
    services = {s["name"]: s for s in view["services"]}
    assert set(services) == {"server", "mixed"}
    ports = {p["targetPort"]: p for p in services["server"]["ports"]}
    assert ports[8080]["mtls"] == "DISABLE"
    assert ports[8080]["mtlsSource"] == "secure/server (port)"
    assert ports[9090]["mtls"] == "STRICT"
    assert ports[9090]["clientTls"] == "ISTIO_MUTUAL (DestinationRule)"
    assert services["server"]["destinationRule"] == "secure/server"
    mixed = services["mixed"]["ports"][0]
    assert mixed["clientTls"] == "plaintext (auto mTLS)"  # 8080 is DISABLE: auto-mTLS backs off


def test_text_output_and_a_plain_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _describe(capsys, "plain.secure", f"--config-dir={_config(tmp_path)}")
    assert code == 0
    assert "Pod: plain.secure" in out
    assert "workload mTLS mode PERMISSIVE (from default)" in out
    assert "clients send plaintext (auto mTLS)" in out  # no sidecar: no tlsMode label


def test_an_unknown_pod_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _describe(capsys, "nope.secure", f"--config-dir={_config(tmp_path)}")
    assert code == 1
    assert "pod 'nope' not found in namespace 'secure'" in err
