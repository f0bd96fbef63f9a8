"""Local mode's CA directory and the plug-in directory: permissions, create-if-absent, the
checks on every file read, and the root rotation's phases with a running CA following them."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from control.identity.keys import KeySpec, generate_key
from control.identity.pem import load_certificates
from control.plane.ca.authority import CertificateAuthority, bootstrap
from control.plane.ca.material import CaMaterial, CaMaterialError, self_signed_root
from control.plane.ca.root_rotation import RotationError, read_state, rotate
from control.plane.ca.signer import Issued, SigningPolicy
from control.plane.ca.store import CaStoreError, DirectorySource, FileCaStore
from tests.ca.conftest import NOW, WEB, csr_for, intermediate_material


def _root() -> CaMaterial:
    return self_signed_root(generate_key(KeySpec()), NOW, "cluster.local")


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)


def test_the_ca_directory_is_private_and_created_once(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    store = FileCaStore(directory)
    assert store.load() is None
    first = store.create(_root())
    assert store.create(_root()) == first  # create-if-absent
    assert store.load() == first
    assert _mode(directory) == "0o700"
    assert _mode(directory / "ca-key.pem") == "0o600"
    for name in ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"):
        assert (directory / name).is_file()


def test_an_existing_open_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    directory.mkdir(mode=0o755)
    FileCaStore(directory).create(_root())
    assert _mode(directory) == "0o700"


def test_two_starts_at_once_end_with_one_ca(tmp_path: Path) -> None:
    results: list[CaMaterial] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(FileCaStore(tmp_path / "ca").create(_root()))
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(r == results[0] for r in results)


def test_half_a_ca_is_an_error_naming_what_is_missing(tmp_path: Path) -> None:
    FileCaStore(tmp_path).create(_root())
    (tmp_path / "ca-key.pem").unlink()
    with pytest.raises(CaStoreError, match=r"ca-key\.pem missing"):
        FileCaStore(tmp_path).load()


def test_every_read_checks_type_and_size(tmp_path: Path) -> None:
    FileCaStore(tmp_path).create(_root())
    (tmp_path / "root-cert.pem").unlink()
    os.mkfifo(tmp_path / "root-cert.pem")
    with pytest.raises(CaStoreError, match=r"root-cert\.pem: not a regular file"):
        FileCaStore(tmp_path).load()
    (tmp_path / "root-cert.pem").unlink()
    (tmp_path / "root-cert.pem").write_bytes(b"x" * (2 * 1024 * 1024))
    with pytest.raises(CaStoreError, match="more than"):
        FileCaStore(tmp_path).load()


def test_a_plug_in_directory_signs_as_an_intermediate(
    tmp_path: Path, root_material: CaMaterial
) -> None:
    plugin_dir = tmp_path / "cacerts"
    plugin_dir.mkdir()
    for name, data in intermediate_material(root_material).as_files().items():
        (plugin_dir / name).write_bytes(data)
    origin, material = bootstrap(FileCaStore(tmp_path / "ca"), DirectorySource(plugin_dir), _root)
    assert origin.plugin
    assert not (tmp_path / "ca").exists()  # never confused with the self-signed CA
    authority = CertificateAuthority(origin, material, SigningPolicy(), "cluster.local",
                                     lambda: NOW)  # fmt: skip
    issued = authority.sign(csr_for()[1], WEB, None)
    assert isinstance(issued, Issued)
    assert len(issued.chain_pem) == 3


def test_a_broken_plug_in_is_refused_at_start(tmp_path: Path, root_material: CaMaterial) -> None:
    plugin_dir = tmp_path / "cacerts"
    plugin_dir.mkdir()
    files = intermediate_material(root_material).as_files()
    files["ca-key.pem"] = _root().ca_key
    for name, data in files.items():
        (plugin_dir / name).write_bytes(data)
    with pytest.raises(CaMaterialError, match=r"ca-key\.pem does not match ca-cert\.pem"):
        bootstrap(FileCaStore(tmp_path / "ca"), DirectorySource(plugin_dir), _root)
    with pytest.raises(CaStoreError, match="not a directory"):
        bootstrap(FileCaStore(tmp_path / "ca"), DirectorySource(tmp_path / "absent"), _root)


def _bundle(directory: Path) -> list[x509.Certificate]:
    return load_certificates((directory / "root-cert.pem").read_bytes())


def test_root_rotation_phases_with_a_running_ca_following(tmp_path: Path) -> None:
    store = FileCaStore(tmp_path)
    origin, material = bootstrap(store, None, _root)
    authority = CertificateAuthority(origin, material, SigningPolicy(), "cluster.local",
                                     lambda: NOW + timedelta(minutes=5))  # fmt: skip
    old_root = authority.issuer.certificate

    def signed_by() -> x509.Certificate:
        issued = authority.sign(csr_for()[1], WEB, None)
        assert isinstance(issued, Issued)
        return x509.load_pem_x509_certificate(issued.chain_pem[-1].encode())

    with pytest.raises(RotationError, match="comes after --phase add"):
        rotate(tmp_path, "activate", NOW)
    state = rotate(tmp_path, "add", NOW)
    assert state is not None
    assert state.phase == "added"
    assert _mode(tmp_path / "next-ca-key.pem") == "0o600"
    assert authority.reload()
    assert len(authority.issuer.roots) == 2
    assert signed_by() == old_root
    with pytest.raises(RotationError, match="under way"):
        rotate(tmp_path, "add", NOW)
    with pytest.raises(RotationError, match="is not next"):
        rotate(tmp_path, "finish", NOW)

    state = rotate(tmp_path, "activate", NOW)
    assert state is not None
    assert state.phase == "active"
    assert authority.reload()
    new_root = signed_by()
    assert new_root != old_root
    assert len(_bundle(tmp_path)) == 2
    assert not (tmp_path / "next-ca-key.pem").exists()

    assert rotate(tmp_path, "finish", NOW) is None
    assert authority.reload()
    assert _bundle(tmp_path) == [new_root]
    assert read_state(tmp_path) is None
    assert signed_by() == new_root


def test_a_half_written_directory_keeps_the_last_good_ca(tmp_path: Path) -> None:
    origin, material = bootstrap(FileCaStore(tmp_path), None, _root)
    authority = CertificateAuthority(origin, material, SigningPolicy(), "cluster.local",
                                     lambda: NOW)  # fmt: skip
    before = authority.issuer
    (tmp_path / "ca-key.pem").write_bytes(_root().ca_key)  # key replaced, certificate not yet
    assert not authority.reload()
    assert authority.issuer is before
