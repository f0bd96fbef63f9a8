"""The client is made once at the edge: from `--kubeconfig FILE`, else in-cluster; a bad or
missing configuration is one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.plane.sources.kube import KubeConfigError, KubeSource, KubeSyncError, kube_client
from tests.control_kube.conftest import FAST, client_for, write_kubeconfig
from tests.control_kube.fake_apiserver import FakeApiServer


def test_a_kubeconfig_points_the_client_at_its_server_with_its_token(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    with client_for(fake, tmp_path) as api:
        assert api.configuration.host == fake.url
        assert list(KubeSource(api, settings=FAST).load().namespaces) == ["shop"]


def test_a_wrong_token_fails_the_initial_sync_with_the_servers_answer(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    api = kube_client(write_kubeconfig(tmp_path, fake.url, "not-the-token"))
    settings = FAST.model_copy(update={"sync_timeout": 0.3})
    try:
        with pytest.raises(KubeSyncError, match="HTTP 401"):
            KubeSource(api, settings=settings).load()
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("key: [unclosed", "unreadable (ParserError: while parsing"),
        ("apiVersion: v1\nkind: Config\nclusters: []\n", "Expected key current-context"),
    ],
)
def test_a_bad_kubeconfig_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    with pytest.raises(KubeConfigError) as raised:
        kube_client(path)
    message = str(raised.value)
    assert message.startswith(f"--kubeconfig {path}: ")
    assert expected in message
    assert "\n" not in message


def test_a_missing_kubeconfig_file(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="no such file"):
        kube_client(tmp_path / "absent")


def test_without_kubeconfig_outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(KubeConfigError, match="no --kubeconfig given and no in-cluster"):
        kube_client(None)
