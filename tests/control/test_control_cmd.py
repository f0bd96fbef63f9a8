"""`mizzen control` as users run it: starts, serves, reports its ports, stops on SIGTERM; bad
arguments get a clear message and exit 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.control.control_process import control_process

DATA = Path(__file__).parent / "testdata" / "translate" / "bookinfo"


def _mizzen(*args: str) -> list[str]:
    return [sys.executable, "-m", "control.cli", *args]


def test_serves_until_sigterm(tmp_path: Path) -> None:
    shutil.copy(DATA / "mesh.yaml", tmp_path / "mesh.yaml")
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {}\n")
    with control_process("--config-dir", str(tmp_path)) as control:
        debug = control.url("debug")
        with httpx.Client(trust_env=False, timeout=5) as http:
            assert http.get(f"{debug}/ready").text == "ok\n"
            configz = http.get(f"{debug}/debug/configz").json()
            assert configz["summary"]["services"] == 4
            [problem] = configz["problems"]
            assert problem["origin"].endswith("broken.yaml#0")
            assert "metadata.name" in problem["message"]
            node = "sidecar~10.244.0.10~productpage-v1-abc.default~default.svc.cluster.local"
            dump = http.get(f"{debug}/debug/config_dump", params={"proxy": node}).json()
            assert dump["connected"] is False
            assert "virtualOutbound" in {item["name"] for item in dump["lds"]}
            unknown = http.get(f"{debug}/debug/config_dump", params={"proxy": "nobody"})
            assert unknown.status_code == 404
            assert "mizzen_xds_connected_proxies 0.0" in http.get(f"{debug}/metrics").text
        control.stop_cleanly()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config-dir", "/nonexistent/dir"], "--config-dir /nonexistent/dir: not a directory"),
        (["--mesh-config", "MESH"], "outboundTrafficPolicy.mode"),
        (["--xds-port", "99999"], "'99999' is not a port number"),
    ],
)
def test_bad_arguments_are_explained(tmp_path: Path, extra: list[str], message: str) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text("outboundTrafficPolicy: {mode: SOMETIMES}\n")
    args = ["control", "--config-dir", str(tmp_path)]
    args += [str(mesh) if item == "MESH" else item for item in extra]
    result = subprocess.run(_mizzen(*args), capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("command", "everything"), [("control", False), ("baseline", True)])
def test_push_scoping_and_the_benchmark_baseline(
    tmp_path: Path, command: str, everything: bool
) -> None:
    shutil.copy(DATA / "mesh.yaml", tmp_path / "mesh.yaml")
    with control_process("--config-dir", str(tmp_path), baseline=command == "baseline") as control:
        with httpx.Client(trust_env=False, timeout=5) as http:
            push = http.get(f"{control.url('debug')}/debug/pushz").json()
        # Scoped, the first push is analysed as "these hosts appeared"; unscoped (the
        # benchmark's own construction), every push re-translates everything.
        assert push["change"]["everything"] is everything
        assert push["version"]
        control.stop_cleanly()


def test_the_baseline_is_not_a_product_switch(tmp_path: Path) -> None:
    args = _mizzen("control", "--config-dir", str(tmp_path), "--no-push-scoping")
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-push-scoping" in result.stderr
