"""One mesh: the trust domain and cluster domain come from the mesh config, and the injection
settings derived from it can never disagree with it. Settings files are read with the shared
reader's checks (regular files, bounded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control.cli.settings_files import injection_for_mesh
from control.config.files import SETTINGS_MAX_BYTES
from control.config.mesh_config import MeshConfig, load_mesh_config, read_mesh_config
from control.config.settings import SettingsFileError, read_mapping
from injector import InjectionConfig, InjectionContext, inject

DOMAINS = st.sampled_from(["cluster.local", "example.org", "mesh.internal", "td-1"])


@given(
    mesh_trust=DOMAINS, mesh_cluster=DOMAINS,
    file_trust=st.none() | DOMAINS, file_cluster=st.none() | DOMAINS,
)  # fmt: skip
def test_derived_injection_settings_never_disagree_with_the_mesh(
    mesh_trust: str, mesh_cluster: str, file_trust: str | None, file_cluster: str | None
) -> None:
    mesh = MeshConfig(trust_domain=mesh_trust, cluster_domain=mesh_cluster)
    data = {k: v for k, v in (("trustDomain", file_trust), ("clusterDomain", file_cluster)) if v}
    config = InjectionConfig.from_mapping(data)
    conflict = (file_trust not in (None, mesh_trust)) or (file_cluster not in (None, mesh_cluster))
    if conflict:
        with pytest.raises(SettingsFileError, match="disagrees with the mesh config"):
            injection_for_mesh(mesh, config, "--injection-config")
        return
    derived = injection_for_mesh(mesh, config, "--injection-config")
    assert derived.trust_domain == mesh.trust_domain
    assert derived.cluster_domain == mesh.cluster_domain


def test_other_injection_settings_are_kept() -> None:
    config = InjectionConfig.from_mapping({"proxyImage": "mesh.example/p:1"})
    derived = injection_for_mesh(MeshConfig(trust_domain="example.org"), config, "--x")
    assert derived.proxy_image == "mesh.example/p:1"
    assert derived.trust_domain == "example.org"


def test_the_mesh_config_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text("trustDomain: example.org\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
    mesh = load_mesh_config(path)
    assert mesh.trust_domain == "example.org"
    path.write_text("outboundTrafficPolicy: {mode: SOMETIMES}\n")
    with pytest.raises(SettingsFileError, match=r"--mesh-config .*outboundTrafficPolicy.mode"):
        load_mesh_config(path)


def test_settings_files_are_regular_and_bounded(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SettingsFileError, match="a FIFO; only regular files are read"):
        read_mapping(fifo, "--config")
    big = tmp_path / "big.yaml"
    big.write_text("a: 1\n" + "#" * SETTINGS_MAX_BYTES)
    with pytest.raises(SettingsFileError, match="over the limit"):
        read_mapping(big, "--config")
    with pytest.raises(SettingsFileError, match=r"--config .*/missing\.yaml: No such file"):
        read_mapping(tmp_path / "missing.yaml", "--config")


def test_unknown_mesh_config_keys_warn_by_name_and_the_rest_applies() -> None:
    """An Istio user's MeshConfig holds keys mizzen does not read: each is named in a warning
    and dropped; known keys apply; a bad value of a known key is still an error."""
    data = {
        "trustDomain": "example.org",
        "ingressClass": "istio",  # Istio's, not read by mizzen
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY", "modee": "x"},  # a typo, nested
        "extensionProviders": [{"name": "authz", "envoyExtAuthzHttp": {
            "service": "authz.ns.svc.cluster.local", "port": 8000, "timeoutt": "1s"}}],
    }  # fmt: skip
    mesh, warnings = read_mesh_config(data)
    assert mesh.trust_domain == "example.org"
    assert mesh.outbound_traffic_policy.mode == "REGISTRY_ONLY"
    assert warnings == [
        "unknown key 'extensionProviders.0.envoyExtAuthzHttp.timeoutt' ignored "
        "(mizzen does not read it)",
        "unknown key 'ingressClass' ignored (mizzen does not read it)",
        "unknown key 'outboundTrafficPolicy.modee' ignored (mizzen does not read it)",
    ]
    assert "ingressClass" in data  # the caller's document is left as it was
    with pytest.raises(ValueError, match="outboundTrafficPolicy"):
        read_mesh_config({"ingressClass": "istio", "outboundTrafficPolicy": {"mode": "NEVER"}})


def test_the_mesh_config_file_logs_each_unknown_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text("ingressClass: istio\ntrustDomain: example.org\n")
    with caplog.at_level("WARNING"):
        assert load_mesh_config(path).trust_domain == "example.org"
    assert f"--mesh-config {path}: unknown key 'ingressClass' ignored" in caplog.text


def test_the_injector_follows_the_meshs_prometheus_merge() -> None:
    """`enablePrometheusMerge` is MeshConfig's: the webhook in the control plane takes it from
    there (before, only the injection settings file could turn merging off)."""
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "annotations": {"prometheus.io/scrape": "true",
                                                    "prometheus.io/port": "9090"}},
        "spec": {"containers": [{"name": "web", "image": "web:1"}]},
    }  # fmt: skip
    context = InjectionContext("shop", {"istio-injection": "enabled"})
    for merge, port in ((True, "15020"), (False, "9090")):
        mesh = MeshConfig(enable_prometheus_merge=merge)
        config = injection_for_mesh(mesh, InjectionConfig(), "--injection-config")
        assert config.enable_prometheus_merge is merge
        injected = inject(pod, context, config).pod
        assert injected["metadata"]["annotations"]["prometheus.io/port"] == port
    conflicting = InjectionConfig.from_mapping({"enablePrometheusMerge": True})
    with pytest.raises(SettingsFileError, match="enablePrometheusMerge True disagrees"):
        injection_for_mesh(MeshConfig(enable_prometheus_merge=False), conflicting, "--x")
