"""`mizzen demo`: the local mesh where the machine allows it, the injection preview elsewhere."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from control.cli.demo_cmd import demo
from tests.harness.netns import harness_namespaces, sweep


def test_without_the_means_it_says_why_and_falls_back_to_the_preview() -> None:
    out = io.StringIO()
    assert demo(out, unavailable=lambda: "it needs root (network namespaces, iptables)") == 0
    text = out.getvalue()
    assert "the local mesh cannot run on this machine: it needs root" in text
    assert "Falling back to the injection preview" in text
    assert "mizzen-proxy" in text  # the preview itself followed


def test_preview_only_never_builds_the_mesh() -> None:
    out = io.StringIO()

    def must_not_be_asked() -> str | None:
        raise AssertionError("--preview-only must not probe the machine")

    assert demo(out, preview_only=True, unavailable=must_not_be_asked) == 0
    assert "injection preview" in out.getvalue()


@pytest.mark.netns
@pytest.mark.envoy
def test_demo_runs_the_local_mesh_and_leaves_nothing_behind(netns_session: None) -> None:
    before = set(harness_namespaces("mzd"))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "control.cli", "demo", "--requests=300"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        _check_demo_output(done)
        assert set(harness_namespaces("mzd")) == before
    finally:
        # A demo killed by the timeout cannot tear down: its namespaces, and the agents and
        # Envoys still running in them, must not outlive this test.
        sweep("mzd")


def _check_demo_output(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    split = re.search(r"300 requests .*: v1 (\d+) \(\d+%\), v2 (\d+)", out)
    assert split, out
    assert 195 <= int(split.group(1)) <= 285, out  # 80% ± 15 points over 300
    assert "header match): v2 20 (100%)" in out
    assert "status 418: 5" in out
    assert re.search(r"re-routed in \d\.\d\ds; 50 requests: v2 50 \(100%\)", out), out
    assert "torn down" in out
    # Identity on: each sidecar holds a certificate for its service account, and its xDS
    # stream to the secure port is mutual TLS (the control plane's name checked).
    assert re.search(r"default\s+Cert Chain\s+spiffe://cluster.local/ns/demo/sa/client\s", out), out
    assert re.search(r"default\s+Cert Chain\s+spiffe://cluster.local/ns/demo/sa/echo\s", out), out
    assert re.search(r"ROOTCA\s+CA\s+-\s+[0-9a-f]+", out), out
    handshakes = re.findall(r":15012 over mutual TLS: xds-grpc TLS handshakes (\d+), control-plane "
                            r"name check failures 0", out)  # fmt: skip
    assert len(handshakes) == 2, out
    assert all(int(n) >= 1 for n in handshakes), out
    # The metrics table: the client's sidecar counted the 418s it answered itself.
    assert re.search(r"source\s+client\s+unknown\s+418\s+5\b", out), out
    assert re.search(r"destination\s+client\s+echo-v2\s+200\s+\d+", out), out
