"""`mizzen control` run with the Deployment's own arguments (mounted paths and ports swapped
for the test's) against the fake API server: it starts, its CA makes its Secret, the webhooks
get their certificate from the mesh CA, the leader writes the root certificate into every
namespace and `caBundle` into the webhook configurations, and every call it made is one the
rendered RBAC allows."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509

from control.install.names import INJECTION_CONFIG_KEY, MESH_CONFIG_KEY, Names
from control.install.values import InstallValues
from tests.control_kube.fake_cluster import fake_cluster
from tests.install.rbac_check import allowed, request_of
from tests.install.rendered import container, one, rendered
from tests.leader.test_duties import install_webhooks, root_cert_maps

PORT_FLAGS = ("--xds-port", "--secure-port", "--ca-port", "--debug-port", "--webhook-port")


def _args(tmp_path: Path, kubeconfig: Path) -> list[str]:
    """The Deployment's args with the mounts made files here and every port 0."""
    objects = rendered()
    names = Names.of(InstallValues())
    files = {
        MESH_CONFIG_KEY: one(objects, "ConfigMap", names.mesh_config)["data"][MESH_CONFIG_KEY],
        INJECTION_CONFIG_KEY: one(objects, "ConfigMap", names.injection_config)["data"][
            INJECTION_CONFIG_KEY
        ],
    }
    args = []
    for arg in container(objects)["args"]:
        flag, _, value = arg.partition("=")
        if flag in PORT_FLAGS:
            arg = f"{flag}=0"
        elif flag in ("--mesh-config", "--injection-config"):
            path = tmp_path / Path(value).name
            path.write_text(files[Path(value).name])
            arg = f"{flag}={path}"
        elif flag == "--webhook-cert-dir":
            arg = f"{flag}={tmp_path / 'webhook-tls'}"
        args.append(arg)
    return [*args, f"--kubeconfig={kubeconfig}"]


def _until(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} within {timeout}s"
        time.sleep(0.1)


def test_the_installed_command_line_runs_and_stays_within_its_rbac(tmp_path: Path) -> None:
    values = InstallValues()
    objects = rendered()
    with fake_cluster(tmp_path) as cluster:
        for name in (values.namespace, "shop"):
            cluster.namespace(name)
        install_webhooks(cluster)
        argv = [sys.executable, "-m", "control.cli", *_args(tmp_path, cluster.kubeconfig)]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as process:  # fmt: skip
            try:
                assert process.stdout is not None
                line = process.stdout.readline()
                assert re.fullmatch(r"mizzen control: xds=\d+ debug=\d+ secure=\d+ ca=\d+ "
                                    r"webhook=\d+\n", line), line  # fmt: skip
                ports = dict(re.findall(r"(\w+)=(\d+)", line))
                debug = f"http://127.0.0.1:{ports['debug']}"
                assert httpx.get(f"{debug}/ready", trust_env=False).status_code == 200
                _until(lambda: {"shop", values.namespace} <= set(root_cert_maps(cluster)),
                       "the root certificate in every namespace")  # fmt: skip

                def bundled() -> bool:
                    kinds = ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
                    return all(
                        w["clientConfig"].get("caBundle")
                        for kind in kinds
                        for c in cluster.fake.objects(kind)
                        for w in c["webhooks"]
                    )

                _until(bundled, "caBundle on every webhook")
                # The webhooks' certificate is the mesh CA's, for the Service's names.
                [secret] = [s for s in cluster.fake.objects("secrets")
                            if s["metadata"]["name"] == "mizzen-ca"]  # fmt: skip
                root = x509.load_pem_x509_certificate(
                    base64.b64decode(secret["data"]["root-cert.pem"])
                )
                served = x509.load_pem_x509_certificate(
                    (tmp_path / "webhook-tls" / "tls.crt").read_bytes()
                )
                assert served.issuer == root.subject
                names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                assert "mizzen.mizzen-system.svc" in names.value.get_values_for_type(x509.DNSName)
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=20) == 0
                assert process.stderr is not None
                assert "Traceback" not in process.stderr.read()
            finally:
                if process.poll() is None:
                    process.kill()
        requests = {request_of(*r) for r in cluster.fake.requests}
    account = Names.of(values).control_plane
    assert {r.resource for r in requests} >= {"secrets", "leases", "configmaps", "namespaces"}
    denied = [r for r in requests if not allowed(objects, account, values.namespace, r)]
    assert not denied, f"RBAC does not allow: {sorted(map(str, denied))}"
