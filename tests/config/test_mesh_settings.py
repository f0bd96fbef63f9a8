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
from control.config.mesh_config import MeshConfig, load_mesh_config
from control.config.settings import SettingsFileError, read_mapping
from injector import InjectionConfig

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
