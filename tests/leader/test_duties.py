"""The leader's duties on the fake API server: the root certificate in every namespace (new
ones included, edits undone, rotations followed) and the webhooks' caBundle; their pure plans;
and the runner that keeps them going through failures."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from control.install.render import Inputs, render
from control.install.values import InstallValues
from control.plane.leader.ca_bundle import ca_bundle_of, ca_bundle_patch
from control.plane.leader.duties import DutyRunner
from control.plane.leader.root_configmaps import plan_root_config_maps
from tests.control_kube.conftest import eventually
from tests.control_kube.fake_cluster import FakeCluster
from tests.leader.ca import SwitchableRoots, TestCA
from tests.leader.conftest import make_candidate, running

pytestmark = pytest.mark.anyio
ROOT_CM = "mizzen-ca-root-cert"


def install_webhooks(cluster: FakeCluster) -> list[dict[str, Any]]:
    """The rendered webhook configurations, as `mizzen install` leaves them (no caBundle)."""
    configs = [
        o for o in render(InstallValues(), Inputs())
        if o["kind"].endswith("WebhookConfiguration")
    ]  # fmt: skip
    for config in configs:
        cluster.fake.apply(config)
    return configs


def root_cert_maps(cluster: FakeCluster) -> dict[str, dict[str, Any]]:
    return {
        c["metadata"]["namespace"]: c
        for c in cluster.fake.objects("configmaps") if c["metadata"]["name"] == ROOT_CM
    }  # fmt: skip


def bundles(cluster: FakeCluster) -> list[str | None]:
    found = []
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        for config in cluster.fake.objects(plural):
            found += [w["clientConfig"].get("caBundle") for w in config["webhooks"]]
    return found


async def test_root_certificate_in_every_namespace_including_new_ones(
    cluster: FakeCluster, roots: SwitchableRoots
) -> None:
    cluster.namespace("shop")
    leader = make_candidate(cluster, "cp-a", roots, resync=60.0)  # only the watch can be quick
    async with running(leader):
        everywhere = {"default", "mizzen-system", "shop"}
        await eventually(lambda: set(root_cert_maps(cluster)) == everywhere,
                         5, "the root certificate in every namespace")  # fmt: skip
        cluster.namespace("created-later")
        took = await eventually(lambda: "created-later" in root_cert_maps(cluster), 5,
                                "the new namespace's root certificate")  # fmt: skip
        assert took < 5  # from the namespace watch, not the 60 s resync
    for namespace, config_map in root_cert_maps(cluster).items():
        assert config_map["data"] == {"root-cert.pem": roots.root_bundle()}, namespace
        assert config_map["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mizzen"
    assert "kube-system" not in root_cert_maps(cluster)


async def test_edits_are_undone_and_rotations_followed(
    cluster: FakeCluster, roots: SwitchableRoots, tmp_path: Path
) -> None:
    install_webhooks(cluster)
    leader = make_candidate(cluster, "cp-a", roots, resync=0.2)
    async with running(leader):
        await eventually(lambda: {"default", "mizzen-system"} <= set(root_cert_maps(cluster)),
                         5, "the root ConfigMaps")  # fmt: skip
        edited = root_cert_maps(cluster)["default"]
        edited["data"] = {"root-cert.pem": "tampered"}
        cluster.fake.apply(edited)
        cluster.fake.delete("v1", "ConfigMap", ROOT_CM, "mizzen-system")
        await eventually(
            lambda: root_cert_maps(cluster).get("default", {}).get("data")
            == {"root-cert.pem": roots.root_bundle()}
            and "mizzen-system" in root_cert_maps(cluster),
            5, "the edit undone and the deleted one back",
        )  # fmt: skip
        old = roots.root_bundle()
        roots.ca = TestCA(tmp_path / "new-ca")  # a root rotation
        new = roots.root_bundle()
        assert new != old
        await eventually(
            lambda: all(c["data"]["root-cert.pem"] == new for c in root_cert_maps(cluster).values())
            and set(bundles(cluster)) == {ca_bundle_of(new)},
            5, "the new root everywhere",
        )  # fmt: skip


async def test_the_ca_bundle_is_patched_into_every_entry(
    cluster: FakeCluster, roots: SwitchableRoots
) -> None:
    install_webhooks(cluster)
    assert set(bundles(cluster)) == {None}
    leader = make_candidate(cluster, "cp-a", roots, resync=0.2)
    async with running(leader):
        expected = ca_bundle_of(roots.root_bundle())
        await eventually(lambda: set(bundles(cluster)) == {expected}, 5, "the caBundle")
        assert base64.b64decode(expected).decode() == roots.root_bundle()
        assert len(bundles(cluster)) == 6  # four mutating entries, two validating
        # `mizzen install` again: the apply does not own caBundle, so it stays.
        cleared = cluster.fake.objects("mutatingwebhookconfigurations")[0]
        cleared["webhooks"][2]["clientConfig"].pop("caBundle")
        cluster.fake.apply(cleared)
        await eventually(lambda: set(bundles(cluster)) == {expected}, 5, "the caBundle back")


def test_the_root_plan_is_minimal() -> None:
    def namespace(name: str, **extra: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, **extra.get("metadata", {})},
                "status": extra.get("status", {"phase": "Active"})}  # fmt: skip

    namespaces = [
        namespace("a"), namespace("b"), namespace("c"), namespace("kube-system"),
        namespace("gone", status={"phase": "Terminating"}),
        namespace("going", metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}),
    ]  # fmt: skip
    existing = [
        {"metadata": {"name": ROOT_CM, "namespace": "a", "resourceVersion": "5",
                      "labels": {"team": "x", "app.kubernetes.io/managed-by": "mizzen"}},
         "data": {"root-cert.pem": "PEM"}},
        {"metadata": {"name": ROOT_CM, "namespace": "b", "resourceVersion": "6",
                      "labels": {"team": "y"}},
         "data": {"root-cert.pem": "OLD", "extra": "z"}},
    ]  # fmt: skip
    labels = {"app.kubernetes.io/managed-by": "mizzen"}
    writes = plan_root_config_maps(namespaces, existing, "PEM", ROOT_CM, "root-cert.pem", labels)
    assert [(w.action, w.namespace) for w in writes] == [("update", "b"), ("create", "c")]
    update = writes[0].body
    assert update["metadata"]["resourceVersion"] == "6"  # fails if b changed meanwhile
    assert update["metadata"]["labels"] == {"team": "y", **labels}
    assert update["data"] == {"root-cert.pem": "PEM"}


def test_the_ca_bundle_patch_is_guarded_and_minimal() -> None:
    config = {
        "metadata": {"resourceVersion": "12"},
        "webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "B"}},
            {"name": "b", "clientConfig": {"service": {"name": "mizzen"}}},
        ],
    }
    operations = ca_bundle_patch(config, "B")
    assert operations == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "12"},
        {"op": "test", "path": "/webhooks/1/name", "value": "b"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "B"},
    ]
    config["webhooks"][1]["clientConfig"]["caBundle"] = "B"
    assert ca_bundle_patch(config, "B") == []


class Counting:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls = 0

    def reconcile(self) -> int:
        self.calls += 1
        if self.fail:
            raise RuntimeError("the CA is not ready\nsecond line")
        return 0


async def test_a_failing_duty_neither_stops_the_others_nor_spins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing, healthy = Counting("failing", fail=True), Counting("healthy")
    runner = DutyRunner([failing, healthy], resync=60.0, backoff_initial=0.1, backoff_max=0.4)
    task = asyncio.create_task(runner.run())
    try:
        await asyncio.sleep(1.0)
        # Backoff 0.1, 0.2, 0.4, 0.4...: a handful of passes in a second, not hundreds.
        assert 3 <= failing.calls <= 6
        assert healthy.calls == failing.calls
        warnings = [r for r in caplog.records if "duty failing failed" in r.getMessage()]
        assert len(warnings) == 1  # once per distinct failure, on one line
        assert "\n" not in warnings[0].getMessage()
        failing.fail = False
        await asyncio.sleep(0.6)
        settled = healthy.calls
        runner.poke()  # a trigger: one pass now, not at the 60 s resync
        await eventually(lambda: healthy.calls == settled + 1, 2, "the poked pass")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
