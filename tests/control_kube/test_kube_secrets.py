"""DestinationRule `credentialName` on the Kubernetes source, against the fake API server: only
the Secrets rules name are read (by name, in the rule's namespace: never a list of all Secrets,
never another namespace's), a rotation arrives by watch, an invalid version keeps the last good
one (a problem names the rule's field), a deleted Secret is no longer served."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient

from control.plane.model.credentials import Credential
from control.plane.model.state import MeshState
from control.plane.sources import kube_secrets
from control.plane.sources.kube import KubeSource
from tests.control.credential_certs import TestCa, generic_secret, tls_secret
from tests.control_kube.conftest import FAST, TOKEN, eventually, running
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, SECRETS, FakeApiServer

pytestmark = pytest.mark.anyio

CA = TestCa("client-ca")
ROOTS = TestCa("server-ca")
FIELD = "spec.trafficPolicy.tls.credentialName"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    """The API server of conftest's `client`, serving Secrets too."""
    with FakeApiServer((*DEFAULT_RESOURCES, SECRETS), token=TOKEN) as server:
        yield server


def rule(namespace: str, credential: str, selector: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "host": "api.payments.example",
        "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": credential}},
    }
    if selector:
        spec["workloadSelector"] = {"matchLabels": {"app": "checkout"}}
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "payments", "namespace": namespace}, "spec": spec,
    }  # fmt: skip


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def seed(fake: FakeApiServer) -> None:
    for name in ("shop", "other"):
        fake.apply(namespace(name))
    fake.apply(rule("shop", "pay"))
    first = CA.issue("checkout-1")
    fake.apply(tls_secret("shop", "pay", first, ROOTS.pem))
    fake.apply(tls_secret("other", "pay", CA.issue("not-yours")))  # same name, other namespace
    fake.apply(generic_secret("shop", "db-password", password=b"hunter2"))  # never named


def chain(state: MeshState) -> bytes | None:
    credential = state.credentials.get(("shop", "pay"))
    return credential.cert if credential is not None else None


def secret_requests(fake: FakeApiServer) -> list[tuple[str, dict[str, str]]]:
    return [(path, query) for _, path, query in fake.requests if "secrets" in path]


async def test_only_the_named_secret_of_the_rules_namespace_is_read(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seed(fake)
    source = KubeSource(client, settings=FAST)
    state = source.load()
    assert set(state.credentials) == {("shop", "pay")}
    assert state.credentials["shop", "pay"].ca == ROOTS.pem
    async with running(source):
        await eventually(lambda: len(source.secrets.reflectors) == 2)
        await eventually(lambda: all(r.running for r in source.secrets.reflectors))
        await eventually(lambda: any(q.get("watch") == "true" for _, q in secret_requests(fake)))
    requests = secret_requests(fake)
    assert {path for path, _ in requests} == {"/api/v1/namespaces/shop/secrets"}
    assert {q["fieldSelector"] for _, q in requests} == {
        "metadata.name=pay", "metadata.name=pay-cacert",
    }  # fmt: skip


async def test_rotation_invalid_version_and_deletion(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seed(fake)
    source = KubeSource(client, settings=FAST)
    first = chain(source.load())
    async with running(source) as states:
        rotated = CA.issue("checkout-2")
        fake.apply(tls_secret("shop", "pay", rotated, ROOTS.pem))
        await eventually(lambda: bool(states) and chain(states[-1]) == rotated.cert)
        assert first != rotated.cert

        broken = tls_secret("shop", "pay", rotated, ROOTS.pem)
        broken["data"]["tls.crt"] = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nno").decode()
        fake.apply(broken)
        await eventually(lambda: any(FIELD in p.message for p in states[-1].problems))
        kept = states[-1]
        assert chain(kept) == rotated.cert  # the last good version is still served
        problem = next(p for p in kept.problems if FIELD in p.message)
        assert problem.severity == "warning"
        assert "Secret shop/pay: data.tls.crt: not PEM certificates" in problem.message
        assert "last good version is kept" in problem.message

        fake.delete("v1", "Secret", "pay", "shop")
        await eventually(lambda: chain(states[-1]) is None)
        gone = next(p for p in states[-1].problems if FIELD in p.message)
        assert gone.severity == "error"
        assert "not found" in gone.message


async def test_a_rule_without_selector_reads_nothing_and_a_removed_rule_stops_its_watch(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seed(fake)
    source = KubeSource(client, settings=FAST)
    source.load()
    async with running(source) as states:
        await eventually(lambda: len(source.secrets.reflectors) == 2)
        fake.apply(rule("shop", "pay", selector=False))
        await eventually(lambda: bool(states) and not states[-1].credentials)
        await eventually(lambda: not source.secrets.reflectors)
        assert any(
            "applies to sidecars only in a DestinationRule with a workloadSelector" in p.message
            for p in states[-1].problems
        )


async def test_a_separate_cacert_secret_gives_the_roots(
    fake: FakeApiServer, client: ApiClient
) -> None:
    fake.apply(namespace("shop"))
    fake.apply(rule("shop", "pay"))
    issued = CA.issue("checkout")
    fake.apply(generic_secret("shop", "pay", cert=issued.cert, key=issued.key))
    fake.apply(generic_secret("shop", "pay-cacert", cacert=ROOTS.pem))
    state = KubeSource(client, settings=FAST).load()
    credential = state.credentials["shop", "pay"]
    assert (credential.cert, credential.ca) == (issued.cert, ROOTS.pem)


async def test_a_forbidden_secret_fails_closed_with_a_problem(
    fake: FakeApiServer, client: ApiClient
) -> None:
    seed(fake)
    fake.failing["secrets"] = 403
    state = KubeSource(client, settings=FAST).load()
    assert not state.credentials
    problem = next(p for p in state.problems if FIELD in p.message)
    assert problem.severity == "error"
    assert "not read yet" in problem.message


async def test_an_unchanged_secret_is_parsed_once_across_state_builds(
    fake: FakeApiServer, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every build (any change in the cluster) asks for every credential, and a parse checks
    the private key (~0.25 s for RSA-4096): only a Secret whose data changed is parsed again."""
    parsed: list[str] = []
    real = kube_secrets.parse_secret

    def counting(secret: dict[str, Any], ca_secret: dict[str, Any] | None) -> Credential:
        parsed.append(secret["metadata"]["name"])
        return real(secret, ca_secret)

    monkeypatch.setattr(kube_secrets, "parse_secret", counting)
    seed(fake)
    source = KubeSource(client, settings=FAST)
    first = chain(source.load())
    for _ in range(3):
        assert chain(source.load()) == first
    assert parsed == ["pay"]

    rotated = CA.issue("checkout-2")
    fake.apply(tls_secret("shop", "pay", rotated, ROOTS.pem))
    for reflector in source.secrets.reflectors:
        reflector.list_once()
    assert chain(source.load()) == rotated.cert
    assert chain(source.load()) == rotated.cert
    assert parsed == ["pay", "pay"]


@pytest.mark.parametrize(
    "name",
    ["pay\nERROR forged line", "pay,metadata.name!=x", "Pay", "p" * 300],
    ids=["newline", "selector-terms", "upper-case", "too-long"],
)
async def test_a_credential_name_that_is_no_secret_name_is_never_asked_for(
    fake: FakeApiServer, client: ApiClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """A rule's `credentialName` is any text; it reached the API's field selector and every log
    line of its watch (the watch's label) as it was."""
    seed(fake)
    fake.apply(rule("shop", name))
    source = KubeSource(client, settings=FAST)
    with caplog.at_level("DEBUG"):
        state = source.load()  # lists what its rules name at once
    assert not state.credentials
    assert secret_requests(fake) == []  # the only rule names no Secret: nothing read
    problem = next(p for p in state.problems if FIELD in p.message)
    assert problem.severity == "error"
    assert "is not a Secret name" in problem.message
    assert "\n" not in problem.message
    assert all("\n" not in record.getMessage() for record in caplog.records)
