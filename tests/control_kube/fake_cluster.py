"""A fake API server serving the install's kinds too, and clients for it made as the CLI makes
them (a kubeconfig file): for the install, uninstall and leader tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes.client import ApiClient

from control.plane.kube.rest import KubeRest
from control.plane.sources.kube import kube_client
from tests.control_kube.conftest import TOKEN, write_kubeconfig
from tests.control_kube.fake_apiserver import DEFAULT_RESOURCES, FakeApiServer
from tests.control_kube.fake_writes import install_resources


@dataclass
class FakeCluster:
    fake: FakeApiServer
    kubeconfig: Path
    client: ApiClient
    rest: KubeRest

    def namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        metadata: dict[str, object] = {"name": name}
        if labels:
            metadata["labels"] = labels
        self.fake.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})


def all_resources() -> tuple:  # type: ignore[type-arg]
    seen = set(DEFAULT_RESOURCES)
    extra = tuple(r for r in install_resources() if r not in seen)
    return (*DEFAULT_RESOURCES, *extra)


@contextlib.contextmanager
def fake_cluster(directory: Path) -> Iterator[FakeCluster]:
    with FakeApiServer(resources=all_resources(), token=TOKEN) as fake:
        kubeconfig = write_kubeconfig(directory, fake.url, TOKEN)
        client = kube_client(kubeconfig)
        try:
            yield FakeCluster(fake, kubeconfig, client, KubeRest(client, 2.0, 10.0))
        finally:
            client.close()  # type: ignore[no-untyped-call]
