"""A trigger for the duties: a list+watch of Namespaces (the Kubernetes source's reflector), so a
new namespace gets its root certificate within moments rather than at the next resync."""

from __future__ import annotations

from typing import TYPE_CHECKING

from control.plane.kube.api import KubeApi
from control.plane.kube.reflector import KubeSettings, Reflector, ResourceKind
from control.plane.leader.duties import PokeCallback

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

NAMESPACES = ResourceKind("", ("v1",), "namespaces", "Namespace")


class NamespaceWatch:
    def __init__(self, client: ApiClient, settings: KubeSettings | None = None) -> None:
        self.settings = settings or KubeSettings()
        self._api = KubeApi(client, self.settings.connect_timeout, self.settings.list_timeout)
        self._reflector: Reflector | None = None

    def start(self, poke: PokeCallback) -> None:
        self.stop()
        self._reflector = Reflector(self._api, NAMESPACES, self.settings)
        self._reflector.start(poke)

    def stop(self) -> None:
        reflector, self._reflector = self._reflector, None
        if reflector is not None:
            reflector.stop()  # its thread ends on its own; a new one starts on the next lead
