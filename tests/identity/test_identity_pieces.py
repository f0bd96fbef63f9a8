"""The shared identity pieces: SPIFFE ids, Istio's certificate API messages (wire-compatible),
keys and CSRs, PEM bundles, and bounded file reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from control.identity import certapi
from control.identity.files import FileReadError, read_bounded, write_atomic
from control.identity.keys import KeySpec, build_csr, generate_key, key_weakness, load_private_key
from control.identity.pem import MAX_CERTIFICATES, PemError, load_certificates
from control.identity.spiffe import IdentityError, SpiffeId


def test_spiffe_ids_round_trip_and_refuse_other_shapes() -> None:
    ident = SpiffeId.parse("spiffe://cluster.local/ns/shop/sa/web")
    assert (ident.trust_domain, ident.namespace, ident.service_account) == (
        "cluster.local", "shop", "web",
    )  # fmt: skip
    assert ident.uri == "spiffe://cluster.local/ns/shop/sa/web"
    assert SpiffeId.from_username("system:serviceaccount:shop:web", "cluster.local") == ident
    assert ident.username == "system:serviceaccount:shop:web"
    for bad in (
        "https://cluster.local/ns/shop/sa/web",
        "spiffe://cluster.local/ns/shop/sa/web/extra",
        "spiffe://cluster.local/sa/web/ns/shop",
        "spiffe://Cluster.local/ns/shop/sa/web",
        "spiffe://cluster.local/ns/Shop/sa/web",
        "spiffe://cluster.local/ns/shop/sa/",
        "spiffe://cluster.local/ns/" + "a" * 64 + "/sa/web",
    ):
        with pytest.raises(IdentityError):
            SpiffeId.parse(bad)
    for bad in ("system:serviceaccount:shop", "system:node:n1", "system:serviceaccount:a:b:c"):
        with pytest.raises(IdentityError):
            SpiffeId.from_username(bad, "cluster.local")


def _istio_messages() -> tuple[type, type]:
    """Istio's ca.proto, declared independently (another pool, another file name), to check the
    wire format field by field against what certapi builds."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="security/v1alpha1/ca.proto", package="istio.v1.auth", syntax="proto3",
        dependency=["google/protobuf/struct.proto"],
    )  # fmt: skip
    request = proto.message_type.add(name="IstioCertificateRequest")
    request.field.add(name="csr", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    request.field.add(name="validity_duration", number=3, type=f.TYPE_INT64, label=f.LABEL_OPTIONAL)
    request.field.add(
        name="metadata", number=4, type=f.TYPE_MESSAGE, label=f.LABEL_OPTIONAL,
        type_name=".google.protobuf.Struct",
    )  # fmt: skip
    response = proto.message_type.add(name="IstioCertificateResponse")
    response.field.add(name="cert_chain", number=1, type=f.TYPE_STRING, label=f.LABEL_REPEATED)
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{proto.package}.IstioCertificateRequest")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{proto.package}.IstioCertificateResponse")),
    )  # fmt: skip


def test_certificate_api_messages_match_istios_wire_format() -> None:
    istio_request, istio_response = _istio_messages()
    ours = certapi.new_request("-----BEGIN CERTIFICATE REQUEST-----", 86400, {"k": "v"})
    theirs = istio_request.FromString(ours.SerializeToString())
    assert theirs.csr == "-----BEGIN CERTIFICATE REQUEST-----"
    assert theirs.validity_duration == 86400
    assert theirs.metadata["k"] == "v"
    back = certapi.parse_response(istio_response(cert_chain=["leaf", "root"]).SerializeToString())
    assert list(back.cert_chain) == ["leaf", "root"]
    assert certapi.METHOD_PATH == "/istio.v1.auth.IstioCertificateService/CreateCertificate"


@pytest.mark.parametrize(
    ("spec", "kind", "size"),
    [
        (KeySpec(), ec.EllipticCurvePrivateKey, 256),
        (KeySpec(curve="P384"), ec.EllipticCurvePrivateKey, 384),
        (KeySpec("rsa"), rsa.RSAPrivateKey, 2048),
    ],
)
def test_keys_and_csrs(spec: KeySpec, kind: type, size: int) -> None:
    key = generate_key(spec)
    assert isinstance(key, kind)
    assert key.key_size == size
    csr = x509.load_pem_x509_csr(build_csr(key, "spiffe://td/ns/a/sa/b"))
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://td/ns/a/sa/b"]


def test_weak_keys_are_named() -> None:
    small = rsa.generate_private_key(65537, 1024).public_key()  # noqa: S505
    assert "1024 bits is too weak" in (key_weakness(small) or "")
    assert "secp256k1" in (key_weakness(ec.generate_private_key(ec.SECP256K1()).public_key()) or "")
    assert "Ed25519" in (key_weakness(ed25519.Ed25519PrivateKey.generate().public_key()) or "")
    assert key_weakness(generate_key(KeySpec()).public_key()) is None
    with pytest.raises(ValueError, match="RSA keys must have"):
        KeySpec("rsa", rsa_bits=1024)
    with pytest.raises(ValueError, match="not a usable PEM private key"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_pem_bundles_are_bounded() -> None:
    with pytest.raises(PemError, match="no PEM certificate"):
        load_certificates(b"hello", "root-cert.pem")
    with pytest.raises(PemError, match="more than"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\n" * (MAX_CERTIFICATES + 1))
    with pytest.raises(PemError, match="larger than"):
        load_certificates(b"x" * (2 * 1024 * 1024))
    with pytest.raises(PemError, match="not a PEM certificate bundle"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


def test_reads_check_type_and_size(tmp_path: Path) -> None:
    small = tmp_path / "small"
    write_atomic(small, b"abc", 0o600)
    assert read_bounded(small, 10) == b"abc"
    assert oct(small.stat().st_mode & 0o777) == "0o600"
    link = tmp_path / "link"
    link.symlink_to(small)  # Kubernetes mounts files through symlinks: followed
    assert read_bounded(link, 10) == b"abc"
    with pytest.raises(FileReadError, match="more than 2"):
        read_bounded(small, 2)
    with pytest.raises(FileReadError, match="not a regular file"):
        read_bounded(tmp_path, 10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileReadError, match="not a regular file"):  # and without blocking
        read_bounded(fifo, 10)
    with pytest.raises(FileReadError, match="cannot open"):
        read_bounded(tmp_path / "absent", 10)
