"""DestinationRule `credentialName` without Envoy: Secrets parsed in Istio's formats (and refused
with the key named), the cluster's TLS from SDS over ADS, the Secret resources a proxy gets —
only the selected proxies of the rule's namespace, never a proxy of another namespace — and
the fail-closed cases. The wire test is tests/control_kube/test_credential_wire.py."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import secrets
from types import MappingProxyType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from control.config.mesh_config import MeshConfig
from control.plane.model.build import build_state
from control.plane.model.credentials import (
    MAX_RSA_BITS,
    MAX_SECRET_BYTES,
    Credential,
    CredentialError,
    parse_secret,
)
from control.plane.model.state import Document, MeshState
from control.plane.xds.translate import consistency
from control.plane.xds.translate.credential_tls import ADS_SDS
from control.plane.xds.translate.proxy import parse_node
from control.plane.xds.translate.proxy_resources import translate
from control.plane.xds.translate.resources import PUSH_ORDER, REDACTED, SECRET, Resources
from control.plane.xds.translate.shared import MeshTranslation
from control.plane.xds.translate.tls_sockets import REFUSED_SAN
from tests.control.credential_certs import TestCa, generic_secret, tls_secret

CLIENT_CA = TestCa("client-ca")
SERVER_CA = TestCa("server-ca")
ISSUED = CLIENT_CA.issue("payments-client")
CLUSTER = "outbound|443||api.payments.example"


def test_a_tls_secret_gives_the_key_pair_and_the_roots() -> None:
    credential = parse_secret(tls_secret("shop", "pay", ISSUED, SERVER_CA.pem), None)
    assert credential == Credential("shop", "pay", ISSUED.cert, ISSUED.key, SERVER_CA.pem)


def test_a_generic_secret_and_a_separate_cacert_secret() -> None:
    secret = generic_secret("shop", "pay", cert=ISSUED.cert, key=ISSUED.key)
    ca_secret = generic_secret("shop", "pay-cacert", cacert=SERVER_CA.pem)
    credential = parse_secret(secret, ca_secret)
    assert (credential.cert, credential.key, credential.ca) == (
        ISSUED.cert, ISSUED.key, SERVER_CA.pem,
    )  # fmt: skip
    roots_only = parse_secret(generic_secret("shop", "roots", cacert=SERVER_CA.pem), None)
    assert not roots_only.key_pair
    assert roots_only.ca == SERVER_CA.pem


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tls.crt": b"not a certificate", "tls.key": ISSUED.key}, "data.tls.crt: not PEM"),
        ({"tls.crt": ISSUED.cert, "tls.key": b"-----BEGIN PRIVATE KEY-----\nxx\n"},
         "data.tls.key: not an unencrypted PEM private key"),
        ({"cert": ISSUED.cert, "key": CLIENT_CA.issue("other").key},
         "data.key: does not match the certificate in cert"),
        ({"tls.crt": ISSUED.cert}, "tls.crt and tls.key go together"),
        ({"cacert": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
         "data.cacert: not PEM"),
        ({"something": b"else"}, "none of tls.crt/tls.key, cert/key, ca.crt, cacert"),
        ({"cacert": b"x" * (MAX_SECRET_BYTES + 1)}, f"more than {MAX_SECRET_BYTES} bytes"),
    ],
)  # fmt: skip
def test_an_invalid_secret_is_refused_naming_the_key(data: dict[str, bytes], message: str) -> None:
    with pytest.raises(CredentialError, match=message.replace(".", r"\.")):
        parse_secret(generic_secret("shop", "pay", **data), None)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def _huge_rsa_key(bits: int) -> bytes:
    """An RSA key of `bits` bits made in milliseconds: its factors are random odd numbers (top
    two bits set, so the product has `bits`), not primes, so validating it fails, quickly.
    Refused for its size, it is never validated: the message tells which check refused it."""
    while True:
        p, q = (secrets.randbits(bits // 2) | 3 << (bits // 2 - 2) | 1 for _ in range(2))
        with contextlib.suppress(ValueError):  # not coprime: draw again
            iqmp = pow(q, -1, p)
            break
    d = secrets.randbits(bits - 100) | 1
    public = rsa.RSAPublicNumbers(65537, p * q)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), iqmp, public)
    return _pem(numbers.private_key(unsafe_skip_rsa_key_validation=True))


def test_a_key_larger_than_the_cap_is_refused_for_its_size_before_it_is_validated() -> None:
    """Validating an RSA-16384 key takes about a minute: anyone who may write the Secret could
    stall the control plane with one, at every update. Its size alone refuses it."""
    for bits in (8192, 16384):
        secret = tls_secret("shop", "pay", dataclasses.replace(ISSUED, key=_huge_rsa_key(bits)))
        message = rf"data\.tls\.key: an RSA key of {bits} bits, more than {MAX_RSA_BITS}"
        with pytest.raises(CredentialError, match=message):
            parse_secret(secret, None)
    # The same kind of key within the cap is validated (and found not to be a key).
    small = tls_secret("shop", "pay", dataclasses.replace(ISSUED, key=_huge_rsa_key(2048)))
    with pytest.raises(CredentialError, match="not an unencrypted PEM private key"):
        parse_secret(small, None)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (ec.generate_private_key(ec.SECP256K1()), "an EC key on secp256k1, not P-256"),
        (ed25519.Ed25519PrivateKey.generate(), "neither an RSA nor an ECDSA key"),
    ],
)
def test_a_key_envoy_cannot_sign_with_is_refused(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, problem: str
) -> None:
    secret = generic_secret("shop", "pay", cert=ISSUED.cert, key=_pem(key))
    with pytest.raises(CredentialError, match=rf"data\.key: {problem}"):
        parse_secret(secret, None)


def test_an_rsa_key_within_the_cap_is_taken() -> None:
    issued = CLIENT_CA.issue("rsa-client", key=rsa.generate_private_key(65537, 2048))
    credential = parse_secret(generic_secret("shop", "pay", cert=issued.cert, key=issued.key), None)
    assert credential.key == issued.key


def test_data_that_is_not_base64_is_refused() -> None:
    secret = generic_secret("shop", "pay")
    secret["data"] = {"cert": "%%%"}
    with pytest.raises(CredentialError, match=r"data\.cert: not base64"):
        parse_secret(secret, None)


# -- translation -------------------------------------------------------------------------


def _rule(
    namespace: str, tls: dict[str, Any], selector: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": "api.payments.example", "trafficPolicy": {"tls": tls}}
    if selector is not None:
        spec["workloadSelector"] = {"matchLabels": selector}
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "payments", "namespace": namespace}, "spec": spec,
    }  # fmt: skip


def _pod(name: str, namespace: str, ip: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running", "podIP": ip},
    }  # fmt: skip


ENTRY = {
    "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
    "metadata": {"name": "payments", "namespace": "shop"},
    "spec": {"hosts": ["api.payments.example"], "location": "MESH_EXTERNAL",
             "resolution": "DNS", "ports": [{"number": 443, "name": "http", "protocol": "HTTP"}]},
}  # fmt: skip
MUTUAL = {"mode": "MUTUAL", "credentialName": "pay", "sni": "api.payments.example",
          "subjectAltNames": ["api.payments.example"]}  # fmt: skip


def _state(*rules: dict[str, Any], credentials: dict[tuple[str, str], Credential]) -> MeshState:
    docs = [
        ENTRY,
        _pod("checkout", "shop", "10.1.0.1", "checkout"),
        _pod("cart", "shop", "10.1.0.2", "cart"),
        _pod("intruder", "other", "10.1.0.3", "checkout"),
        *rules,
    ]
    documents = [Document(str(i), d) for i, d in enumerate(docs)]
    state = build_state(documents, MeshConfig(), reads_secrets=True)
    return dataclasses.replace(state, credentials=MappingProxyType(credentials))


CREDENTIALS = {("shop", "pay"): Credential("shop", "pay", ISSUED.cert, ISSUED.key, SERVER_CA.pem)}


def _dump(state: MeshState, pod: str, namespace: str = "shop", ip: str = "10.1.0.1") -> Any:
    node = f"sidecar~{ip}~{pod}.{namespace}~{namespace}.svc.cluster.local"
    return translate(state, parse_node(node)).to_json()


def _socket(dump: Any) -> dict[str, Any]:
    cluster = next(c for c in dump["cds"] if c["name"] == CLUSTER)
    socket: dict[str, Any] = cluster.get("transport_socket", {})
    return socket


def _refused(socket: dict[str, Any]) -> bool:
    validation = socket["typed_config"]["common_tls_context"]["validation_context"]
    return bool(validation["match_typed_subject_alt_names"][0]["matcher"]["exact"] == REFUSED_SAN)


def test_mutual_with_a_credential_takes_certificate_and_roots_from_ads() -> None:
    state = _state(_rule("shop", MUTUAL, {"app": "checkout"}), credentials=CREDENTIALS)
    dump = _dump(state, "checkout")
    context = _socket(dump)["typed_config"]
    assert context["sni"] == "api.payments.example"
    common = context["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"] == [
        {"name": "kubernetes://pay", "sds_config": ADS_SDS}
    ]
    combined = common["combined_validation_context"]
    assert combined["validation_context_sds_secret_config"] == {
        "name": "kubernetes://pay-cacert", "sds_config": ADS_SDS,
    }  # fmt: skip
    assert combined["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "api.payments.example"}}
    ]
    secrets = {s["name"]: s for s in dump["sds"]}
    assert set(secrets) == {"kubernetes://pay", "kubernetes://pay-cacert"}
    chain = secrets["kubernetes://pay"]["tls_certificate"]["certificate_chain"]["inline_bytes"]
    assert base64.b64decode(chain) == ISSUED.cert
    # A dump never shows the key; the resource sent to the proxy holds it.
    assert secrets["kubernetes://pay"]["tls_certificate"]["private_key"] == {
        "inline_string": REDACTED
    }
    sent = translate(state, parse_node("sidecar~10.1.0.1~checkout.shop~shop.svc.cluster.local"))
    secret: Any = sent.of(SECRET)["kubernetes://pay"]
    assert secret.tls_certificate.private_key.inline_bytes == ISSUED.key
    roots = secrets["kubernetes://pay-cacert"]["validation_context"]["trusted_ca"]
    assert base64.b64decode(roots["inline_bytes"]) == SERVER_CA.pem


def test_simple_takes_only_the_roots() -> None:
    rule = _rule("shop", {"mode": "SIMPLE", "credentialName": "pay"}, {"app": "checkout"})
    dump = _dump(_state(rule, credentials=CREDENTIALS), "checkout")
    common = _socket(dump)["typed_config"]["common_tls_context"]
    assert "tls_certificate_sds_secret_configs" not in common
    assert [s["name"] for s in dump["sds"]] == ["kubernetes://pay-cacert"]


def test_only_the_selected_proxies_of_the_rules_namespace_get_the_secret() -> None:
    state = _state(_rule("shop", MUTUAL, {"app": "checkout"}), credentials=CREDENTIALS)
    cart = _dump(state, "cart", ip="10.1.0.2")  # not selected: the rule does not apply
    assert "sds" not in cart
    assert "transport_socket" not in _socket(cart)
    # Same labels in another namespace: the rule is not its own, it gets nothing of "shop".
    intruder = _dump(state, "intruder", "other", "10.1.0.3")
    assert "sds" not in intruder
    assert "transport_socket" not in _socket(intruder)


def test_a_rule_in_another_namespace_never_reaches_that_namespaces_secret() -> None:
    """`other` names a Secret `pay` too: only `other`'s own Secret could serve it (absent
    here), never `shop`'s, though the names are equal."""
    state = _state(_rule("other", MUTUAL, {"app": "checkout"}), credentials=CREDENTIALS)
    intruder = _dump(state, "intruder", "other", "10.1.0.3")
    assert "sds" not in intruder
    assert _refused(_socket(intruder))


def test_without_a_workload_selector_it_fails_closed_with_a_warning() -> None:
    state = _state(_rule("shop", MUTUAL), credentials=CREDENTIALS)
    dump = _dump(state, "checkout")
    assert _refused(_socket(dump))
    assert "sds" not in dump
    assert any(
        "credentialName: applies to sidecars only in a DestinationRule with a workloadSelector"
        in p.message
        for p in state.problems
    ), state.problems


def test_a_missing_or_incomplete_credential_fails_closed() -> None:
    missing = _state(_rule("shop", MUTUAL, {"app": "checkout"}), credentials={})
    assert _refused(_socket(_dump(missing, "checkout")))
    roots_only = {("shop", "pay"): Credential("shop", "pay", ca=SERVER_CA.pem)}
    incomplete = _state(_rule("shop", MUTUAL, {"app": "checkout"}), credentials=roots_only)
    assert _refused(_socket(_dump(incomplete, "checkout")))


def test_a_rotation_retranslates_the_namespaces_proxies() -> None:
    rule = _rule("shop", MUTUAL, {"app": "checkout"})
    before = _state(rule, credentials=CREDENTIALS)
    rotated_cert = CLIENT_CA.issue("payments-client-2")
    after = _state(rule, credentials={
        ("shop", "pay"): Credential("shop", "pay", rotated_cert.cert, rotated_cert.key,
                                    SERVER_CA.pem),
    })  # fmt: skip
    node = parse_node("sidecar~10.1.0.1~checkout.shop~shop.svc.cluster.local")
    translation = MeshTranslation(before)
    first = translation.for_proxy(node)
    following, change = translation.successor(after)
    assert change.credentials == ("shop",)
    secret: Any = following.for_proxy(node).of(SECRET)["kubernetes://pay"]
    assert secret.tls_certificate.certificate_chain.inline_bytes == rotated_cert.cert
    assert first.of(SECRET)["kubernetes://pay"] != secret


def test_a_cluster_without_its_secret_is_an_inconsistent_snapshot() -> None:
    state = _state(_rule("shop", MUTUAL, {"app": "checkout"}), credentials=CREDENTIALS)
    node = parse_node("sidecar~10.1.0.1~checkout.shop~shop.svc.cluster.local")
    resources = translate(state, node)
    assert consistency.problems(resources) == []
    kept = {t: list(resources.of(t).values()) for t in PUSH_ORDER if t != SECRET}
    assert consistency.problems(Resources.of_messages(kept)) == [
        f"cluster {CLUSTER}: no secret 'kubernetes://pay'",
        f"cluster {CLUSTER}: no secret 'kubernetes://pay-cacert'",
    ]
