"""Kubernetes mode against the fake API server: TokenReview (authenticated, not, wrong
audience, API server down) and the CA's Secrets (create-if-absent, a losing replica reads the
winner's, a plug-in CA in `cacerts`)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.identity.keys import KeySpec, generate_key
from control.plane.ca.authn import AuthenticationError
from control.plane.ca.authority import bootstrap
from control.plane.ca.kube_calls import KubeJson
from control.plane.ca.kube_store import KubeCaStore, KubeSecretSource
from control.plane.ca.material import CaMaterial, load_issuer, self_signed_root
from control.plane.ca.refusals import Reason
from control.plane.ca.store import CaStoreError
from control.plane.ca.tokenreview import (
    KubeTokenReviewer,
    ReviewResult,
    TokenReviewAuthenticator,
)
from tests.ca.conftest import NOW, WEB, intermediate_material
from tests.control_kube.conftest import TOKEN, client_for
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, SECRETS, FakeApiServer

NS = "mizzen-system"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(resources=(*DEFAULT_RESOURCES, SECRETS), token=TOKEN) as server:
        yield server


@pytest.fixture
def api(fake: FakeApiServer, tmp_path: Path) -> Iterator[KubeJson]:
    with client_for(fake, tmp_path) as client:
        yield KubeJson(client, connect_timeout=1, read_timeout=3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _authenticator(api: KubeJson, clock: Clock | None = None) -> TokenReviewAuthenticator:
    return TokenReviewAuthenticator(
        KubeTokenReviewer(api), "mizzen-ca", "cluster.local", clock or Clock(), cache_seconds=30
    )


def test_an_authenticated_token_for_the_audience_is_its_service_account(
    fake: FakeApiServer, api: KubeJson
) -> None:
    token = fake.tokens.issue("shop", "web", audiences=("mizzen-ca",))
    assert _authenticator(api).authenticate(token) == WEB


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown token", Reason.NOT_AUTHENTICATED),
        ("revoked", Reason.NOT_AUTHENTICATED),
        ("expired", Reason.NOT_AUTHENTICATED),
        ("API-server audience only", Reason.NOT_AUTHENTICATED),
        ("another mesh's audience", Reason.NOT_AUTHENTICATED),
    ],
)
def test_tokens_the_api_server_does_not_vouch_for_are_refused(
    fake: FakeApiServer, api: KubeJson, case: str, reason: Reason
) -> None:
    token = {
        "unknown token": lambda: "fake.not-issued",
        "revoked": lambda: _revoked(fake),
        "expired": lambda: fake.tokens.issue("shop", "web", ("mizzen-ca",), expires_in=-1),
        "API-server audience only": lambda: fake.tokens.issue("shop", "web"),
        "another mesh's audience": lambda: fake.tokens.issue("shop", "web", ("istio-ca",)),
    }[case]()
    with pytest.raises(AuthenticationError) as refused:
        _authenticator(api).authenticate(token)
    assert refused.value.refusal.reason == reason
    assert "not authenticated" in refused.value.refusal.message


def _revoked(fake: FakeApiServer) -> str:
    token = fake.tokens.issue("shop", "web", ("mizzen-ca",))
    fake.tokens.revoke(token)
    return token


class _LyingReviewer:
    """A reviewer whose answer omits the audience (an API server ignoring `audiences`)."""

    def review(self, token: str, audiences: object) -> ReviewResult:
        return ReviewResult(True, "system:serviceaccount:shop:web", ("kubernetes",))


def test_an_answer_without_our_audience_is_refused() -> None:
    authenticator = TokenReviewAuthenticator(
        _LyingReviewer(),
        "mizzen-ca",
        "cluster.local",
        Clock(),  # type: ignore[arg-type]
    )
    with pytest.raises(AuthenticationError) as refused:
        authenticator.authenticate("t")
    assert refused.value.refusal.reason == Reason.WRONG_AUDIENCE


def test_a_user_that_is_not_a_service_account_is_refused() -> None:
    class Reviewer:
        def review(self, token: str, audiences: object) -> ReviewResult:
            return ReviewResult(True, "kubernetes-admin", ("mizzen-ca",))

    authenticator = TokenReviewAuthenticator(
        Reviewer(),
        "mizzen-ca",
        "cluster.local",
        Clock(),  # type: ignore[arg-type]
    )
    with pytest.raises(AuthenticationError) as refused:
        authenticator.authenticate("t")
    assert refused.value.refusal.reason == Reason.NOT_A_SERVICE_ACCOUNT


def test_the_api_server_down_means_refused(fake: FakeApiServer, api: KubeJson) -> None:
    token = fake.tokens.issue("shop", "web", ("mizzen-ca",))
    fake.stop()
    with pytest.raises(AuthenticationError) as refused:
        _authenticator(api).authenticate(token)
    assert refused.value.refusal.reason == Reason.REVIEW_UNAVAILABLE
    fake.start()
    fake.failing["tokenreviews"] = 500
    with pytest.raises(AuthenticationError) as failing:
        _authenticator(api).authenticate(token)
    assert failing.value.refusal.reason == Reason.REVIEW_UNAVAILABLE


def test_successful_reviews_are_cached_briefly_and_failures_never(
    fake: FakeApiServer, api: KubeJson
) -> None:
    clock = Clock()
    authenticator = _authenticator(api, clock)
    token = fake.tokens.issue("shop", "web", ("mizzen-ca",))
    for _ in range(5):
        authenticator.authenticate(token)
    assert fake.tokens.reviews == 1
    fake.tokens.revoke(token)
    clock.now += 31  # past the cache: the revocation is seen
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(token)
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(token)
    assert fake.tokens.reviews == 3


def test_the_cache_is_bounded(fake: FakeApiServer, api: KubeJson) -> None:
    authenticator = TokenReviewAuthenticator(
        KubeTokenReviewer(api), "mizzen-ca", "cluster.local", Clock(), cache_size=3
    )
    tokens = [fake.tokens.issue("shop", f"sa{i}", ("mizzen-ca",)) for i in range(5)]
    for token in tokens:
        authenticator.authenticate(token)
    assert len(authenticator._cache) == 3


def _secret(name: str, data: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
            "data": data}  # fmt: skip


def _root() -> CaMaterial:
    return self_signed_root(generate_key(KeySpec()), NOW, "cluster.local")


def test_the_ca_secret_is_created_once_and_shared(fake: FakeApiServer, api: KubeJson) -> None:
    roots = iter([_root(), _root()])
    first_origin, first = bootstrap(KubeCaStore(api, NS), None, lambda: next(roots))
    second_origin, second = bootstrap(KubeCaStore(api, NS), None, lambda: next(roots))
    assert first == second
    assert not first_origin.plugin
    assert not second_origin.plugin
    [secret] = fake.objects("secrets")
    assert secret["metadata"]["name"] == "mizzen-ca"
    assert secret["metadata"]["namespace"] == NS
    assert base64.b64decode(secret["data"]["ca-cert.pem"]) == first.ca_cert
    load_issuer(first)


def test_a_replica_losing_the_race_takes_the_winners_ca(fake: FakeApiServer, api: KubeJson) -> None:
    loser = KubeCaStore(api, NS)
    assert loser.load() is None  # both replicas see no CA ...
    winner = KubeCaStore(api, NS).create(_root())  # ... the other one creates it first
    assert loser.create(_root()) == winner  # 409, re-read


def test_a_plug_in_ca_secret_wins_over_the_self_signed_one(
    fake: FakeApiServer, api: KubeJson, root_material: CaMaterial
) -> None:
    plugin = intermediate_material(root_material)
    data = {k: base64.b64encode(v).decode() for k, v in plugin.as_files().items()}
    fake.apply(_secret("cacerts", data))
    origin, material = bootstrap(KubeCaStore(api, NS), KubeSecretSource(api, NS), _root)
    assert origin.plugin
    assert material == plugin
    assert fake.objects("secrets")[0]["metadata"]["name"] == "cacerts"  # no mizzen-ca made


def test_a_broken_secret_is_named(fake: FakeApiServer, api: KubeJson) -> None:
    data = {"ca-key.pem": "not base64!", "ca-cert.pem": "", "root-cert.pem": ""}
    fake.apply(_secret("mizzen-ca", data))
    with pytest.raises(CaStoreError, match=r"mizzen-system/mizzen-ca: ca-key\.pem is not base64"):
        KubeCaStore(api, NS).load()


def test_an_unreachable_api_server_is_an_error_not_an_empty_store(
    fake: FakeApiServer, api: KubeJson
) -> None:
    fake.stop()
    with pytest.raises(CaStoreError, match="unreachable"):
        KubeCaStore(api, NS).load()
