"""`mizzen install` and `mizzen uninstall` against the fake API server: server-side apply with
the `mizzen` field manager, the wait for the rollout (whose status the test writes, as the
Deployment controller would) and for the webhooks' `caBundle` (which the leader's own duty
patches in, run by the test), conflicts, revisions side by side, and removal."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.cli.main import main
from control.plane.kube.rest import JSON_PATCH
from control.plane.leader.ca_bundle import CaBundleDuty
from tests.control_kube.fake_apiserver import FakeApiServer
from tests.control_kube.fake_cluster import FakeCluster, fake_cluster
from tests.install.crd_files import CRD_FILES

HOOK = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/mizzen-sidecar-injector"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    with fake_cluster(tmp_path) as made:
        yield made


class Controller:
    """Plays the Deployment controller: once a Deployment of that name exists, reports its
    replicas updated and available for the generation it sees; then, with `leader`, the new
    control plane's leader: its `CaBundleDuty` patches `caBundle` into the webhooks."""

    def __init__(
        self, cluster: FakeCluster, name: str, namespace: str = "mizzen-system", leader: bool = True
    ) -> None:
        self.fake, self.name, self.namespace = cluster.fake, name, namespace
        self.duty = (
            CaBundleDuty(cluster.rest, StaticRoots(), lambda: True,
                         ["mizzen-sidecar-injector"], ["mizzen-validator"])
            if leader else None
        )  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        reported = 0
        while not self._stop.wait(0.05):
            for deployment in self.fake.objects("deployments"):
                metadata = deployment["metadata"]
                if (metadata["name"], metadata["namespace"]) != (self.name, self.namespace):
                    continue
                if metadata["generation"] != reported:
                    reported = metadata["generation"]
                    replicas = deployment["spec"]["replicas"]
                    self.fake.set_status("apps/v1", "Deployment", self.name, self.namespace, {
                        "observedGeneration": reported, "replicas": replicas,
                        "updatedReplicas": replicas, "readyReplicas": replicas,
                        "availableReplicas": replicas,
                    })  # fmt: skip
                # The leader's passes: the webhook configurations may be applied after it starts.
                if reported and self.duty is not None:
                    self.duty.reconcile()


class StaticRoots:
    def root_bundle(self) -> str:
        return ROOT_PEM


ROOT_PEM = "-----BEGIN CERTIFICATE-----\nUk9PVA==\n-----END CERTIFICATE-----\n"


def install(cluster: FakeCluster, *argv: str) -> int:
    return main(["install", "--kubeconfig", str(cluster.kubeconfig), *argv])


def kinds(fake: FakeApiServer, plural: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in fake.objects(plural))


def test_install_applies_everything_and_waits_for_the_rollout(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with Controller(cluster, "mizzen"):
        assert install(cluster) == 0
    out = capsys.readouterr().out
    assert "Deployment/mizzen -n mizzen-system created" in out
    assert "rollout done: mizzen: 2 of 2 replicas ready" in out
    assert "caBundle set on 2 webhook configurations by the leader" in out
    assert out.rstrip().endswith("mizzen installed")
    fake = cluster.fake
    assert len(fake.objects("customresourcedefinitions")) == len(CRD_FILES)
    assert kinds(fake, "configmaps") == ["mizzen-mesh", "mizzen-sidecar-injector"]
    assert kinds(fake, "services") == ["mizzen"]
    [deployment] = fake.objects("deployments")
    # Every apply is the install's (the leader's caBundle patch is its own field manager's).
    applies = [r for r in fake.requests
               if r[0] == "PATCH" and r[2].get("fieldManager") != "mizzen-leader"]  # fmt: skip
    assert len(applies) > 10
    assert {r[2]["fieldManager"] for r in applies} == {"mizzen"}
    assert all("force" not in r[2] for r in applies)
    with Controller(cluster, "mizzen"):  # again: idempotent
        assert install(cluster) == 0
    assert "Deployment/mizzen -n mizzen-system configured" in capsys.readouterr().out
    assert (
        fake.objects("deployments")[0]["metadata"]["generation"]
        == deployment["metadata"]["generation"]
    )


def test_the_leaders_ca_bundle_survives_a_reinstall(cluster: FakeCluster) -> None:
    assert install(cluster, "--no-wait") == 0
    patch = [{"op": "add", "path": "/webhooks/0/clientConfig/caBundle", "value": "Uk9PVA=="}]
    cluster.rest.call("PATCH", HOOK, body=patch, content_type=JSON_PATCH,
                      query=[("fieldManager", "mizzen-leader")])  # fmt: skip
    assert install(cluster, "--no-wait", "--set", "webhook.timeoutSeconds=5") == 0
    hook = cluster.rest.get(HOOK)
    assert hook is not None
    assert hook["webhooks"][0]["clientConfig"]["caBundle"] == "Uk9PVA=="
    assert hook["webhooks"][0]["timeoutSeconds"] == 5


def test_a_conflict_is_explained_and_can_be_forced(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.namespace("mizzen-system")
    theirs = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "mizzen-mesh", "namespace": "mizzen-system"},
              "data": {"mesh": "trustDomain: theirs.example\n"}}  # fmt: skip
    cluster.rest.call("PATCH", "/api/v1/namespaces/mizzen-system/configmaps/mizzen-mesh",
                      body=theirs, content_type="application/apply-patch+yaml",
                      query=[("fieldManager", "helm")])  # fmt: skip
    assert install(cluster, "--no-wait") == 1
    err = capsys.readouterr().err
    assert "ConfigMap/mizzen-mesh" in err
    assert "helm" in err
    assert "--force-conflicts" in err
    assert install(cluster, "--no-wait", "--force-conflicts") == 0
    [mesh] = [
        c for c in cluster.fake.objects("configmaps") if c["metadata"]["name"] == "mizzen-mesh"
    ]
    assert "rootNamespace: mizzen-system" in mesh["data"]["mesh"]


def test_no_ca_bundle_from_a_leader_times_out_naming_the_webhooks(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    with Controller(cluster, "mizzen", leader=False):
        assert install(cluster, "--timeout", "1") == 1
    captured = capsys.readouterr()
    assert "rollout done" in captured.out
    assert "mizzen installed" not in captured.out
    assert (
        "caBundle not yet on MutatingWebhookConfiguration/mizzen-sidecar-injector, "
        "ValidatingWebhookConfiguration/mizzen-validator after 1s" in captured.err
    )
    assert "kubectl -n mizzen-system logs -l app=mizzen" in captured.err


def test_a_rollout_that_does_not_finish_times_out(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert install(cluster, "--timeout", "0.5") == 1
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "rollout not done after 0.5s" in err
    assert "describe deployment mizzen" in err


def test_revisions_install_side_by_side_and_uninstall_apart(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(cluster, "--no-wait") == 0
    assert install(cluster, "--no-wait", "--revision", "canary") == 0
    fake = cluster.fake
    assert kinds(fake, "deployments") == ["mizzen", "mizzen-canary"]
    assert kinds(fake, "mutatingwebhookconfigurations") == [
        "mizzen-sidecar-injector", "mizzen-sidecar-injector-canary",
    ]  # fmt: skip
    fake.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "mizzen-leader-canary", "namespace": "mizzen-system"},
                "spec": {"holderIdentity": "x"}})  # fmt: skip
    kubeconfig = ["--kubeconfig", str(cluster.kubeconfig)]
    assert main(["uninstall", *kubeconfig, "--revision", "canary"]) == 0
    out = capsys.readouterr().out
    assert "Namespace/mizzen-system kept (shared; --purge removes it)" in out
    assert kinds(fake, "deployments") == ["mizzen"]
    assert kinds(fake, "mutatingwebhookconfigurations") == ["mizzen-sidecar-injector"]
    assert kinds(fake, "leases") == []
    assert len(fake.objects("customresourcedefinitions")) == len(CRD_FILES)
    assert main(["uninstall", *kubeconfig, "--purge"]) == 0
    for plural in ("deployments", "customresourcedefinitions", "namespaces", "configmaps",
                   "clusterroles", "validatingwebhookconfigurations"):  # fmt: skip
        assert fake.objects(plural) == [], plural
    assert main(["uninstall", *kubeconfig]) == 0  # nothing left: says so, succeeds
    assert "already absent" in capsys.readouterr().out


def test_the_webhooks_go_first_on_uninstall(cluster: FakeCluster) -> None:
    assert install(cluster, "--no-wait") == 0
    cluster.fake.requests.clear()
    assert main(["uninstall", "--kubeconfig", str(cluster.kubeconfig)]) == 0
    deleted = [
        path.split("/")[-2] for method, path, _ in cluster.fake.requests if method == "DELETE"
    ]
    assert deleted[:2] == ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
    assert deleted.index("deployments") > 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "controlPlane.replica=3"], "unknown key 'controlPlane.replica'"),
        (["--kubeconfig", "/nonexistent"], "--kubeconfig /nonexistent: no such file"),
    ],
)
def test_bad_flags_exit_2_naming_them(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("install", "uninstall"):
        assert main([command, *argv]) == 2
        assert message in capsys.readouterr().err


def test_an_unreachable_cluster_is_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.control_kube.conftest import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:9", "token")
    assert main(["install", "--kubeconfig", str(kubeconfig), "--no-wait"]) == 1
    err = capsys.readouterr().err
    assert "unreachable" in err
    assert "Traceback" not in err
