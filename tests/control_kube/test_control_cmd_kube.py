"""`mizzen control --kube --kubeconfig FILE` as users run it, against the fake API server: it
serves the cluster's config, follows a change, stops on SIGTERM; bad flags exit 2 with one line."""

from __future__ import annotations

import base64
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from control.cli.main import main
from tests.agent.conftest import free_port
from tests.control.control_process import control_process
from tests.control_kube.conftest import TOKEN, mesh_documents, write_kubeconfig
from tests.control_kube.fake_apiserver import SECRETS, FakeApiServer
from tests.control_kube.fake_cluster import fake_cluster


def _mizzen(*args: str) -> list[str]:
    return [sys.executable, "-m", "control.cli", *args]


def _summary(http: httpx.Client, debug: str) -> dict[str, int]:
    summary: dict[str, int] = http.get(f"{debug}/debug/configz").json()["summary"]
    return summary


def test_control_runs_on_the_kubernetes_api(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as cluster:
        fake = cluster.fake
        for document in mesh_documents():
            fake.apply(document)
        args = ("--kube", "--kubeconfig", str(cluster.kubeconfig), "--secure-port", "0",
                "--ca-port", "0")  # fmt: skip
        with control_process(*args) as control:
            assert {"secure", "ca"} <= control.ports.keys()  # the CA, from its Secret
            debug = control.url("debug")
            with httpx.Client(trust_env=False, timeout=5) as http:
                assert _summary(http, debug)["services"] == 2
                assert _summary(http, debug)["otherMeshConfig"] == 4
                fake.delete("v1", "Service", "ratings", "shop")
                deadline = time.monotonic() + 5
                while _summary(http, debug)["services"] != 1:
                    assert time.monotonic() < deadline, "the deletion never arrived"
                    time.sleep(0.05)
                assert http.get(f"{debug}/ready").status_code == 200
            # The CA made its Secret; the leader (the only replica) took the Lease and put the
            # root certificate into every namespace.
            [secret] = [s for s in fake.objects("secrets") if s["metadata"]["name"] == "mizzen-ca"]
            root = base64.b64decode(secret["data"]["root-cert.pem"]).decode()
            deadline = time.monotonic() + 15
            while set(_root_config_maps(fake)) != {"shop"} | _namespaces(fake) - SKIPPED:
                assert time.monotonic() < deadline, _root_config_maps(fake)
                time.sleep(0.1)
            assert all(pem == root for pem in _root_config_maps(fake).values())
            [lease] = fake.objects("leases")
            assert lease["spec"]["holderIdentity"]
            control.stop_cleanly()
        # Stopping released the Lease, so a successor need not wait for it to expire.
        [lease] = fake.objects("leases")
        assert not lease["spec"].get("holderIdentity")


SKIPPED = {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}


def _namespaces(fake: FakeApiServer) -> set[str]:
    return {n["metadata"]["name"] for n in fake.objects("namespaces")}


def _root_config_maps(fake: FakeApiServer) -> dict[str, str]:
    return {
        c["metadata"]["namespace"]: c["data"]["root-cert.pem"]
        for c in fake.objects("configmaps")
        if c["metadata"]["name"] == "mizzen-ca-root-cert"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kube", "--kubeconfig", "/nonexistent/kubeconfig"], "/nonexistent/kubeconfig: no such"),
        (["--config-dir", "DIR", "--kubeconfig", "KUBECONFIG"], "--kubeconfig needs --kube"),
    ],
)
def test_bad_source_flags_are_explained(tmp_path: Path, args: list[str], message: str) -> None:
    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:1", TOKEN)
    args = [{"DIR": str(tmp_path), "KUBECONFIG": str(kubeconfig)}.get(a, a) for a in args]
    result = subprocess.run(
        _mizzen("control", *args), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--config-dir", ".", "--kube"],
            "argument --kube: not allowed with argument --config-dir",
        ),
        ([], "one of the arguments --config-dir --kube is required"),
    ],
)
def test_one_source_exactly(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["control", *args])  # argparse refuses before anything runs
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_not_ready_until_the_ca_can_be_loaded(fake: FakeApiServer, tmp_path: Path) -> None:
    """The fake serves no Secrets at first: the CA cannot be loaded, the control plane retries
    and says it is not ready; once Secrets are served, the CA is made and it is ready."""
    kubeconfig = write_kubeconfig(tmp_path, fake.url, TOKEN)
    debug_port = free_port()
    ports = ["--xds-port", "0", "--debug-port", str(debug_port), "--secure-port", "0",
             "--ca-port", "0"]  # fmt: skip
    argv = _mizzen("control", "--kube", "--kubeconfig", str(kubeconfig), *ports)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:  # fmt: skip
        try:
            ready = f"http://127.0.0.1:{debug_port}/ready"
            statuses: list[int] = []
            # The process's start (imports) takes its time on a busy machine: wait for the
            # debug server's first answer, then watch it say "not ready" for a while.
            deadline = time.monotonic() + 60
            while len(statuses) < 10 and time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    statuses.append(httpx.get(ready, trust_env=False, timeout=2).status_code)
                time.sleep(0.2)
            assert statuses, "the debug server never answered"
            assert set(statuses) == {503}
            fake.install(SECRETS)
            assert process.stdout is not None
            line = process.stdout.readline()  # printed once the CA is loaded and listening
            assert "secure=" in line
            assert httpx.get(ready, trust_env=False, timeout=2).status_code == 200
            assert [s for s in fake.objects("secrets") if s["metadata"]["name"] == "mizzen-ca"]
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            assert process.stderr is not None
            log = process.stderr.read()
            assert "the CA cannot be loaded yet" in log
            assert "Traceback" not in log
        finally:
            if process.poll() is None:
                process.kill()
