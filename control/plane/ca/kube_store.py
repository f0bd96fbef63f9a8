"""The CA in Kubernetes Secrets (`--kube`): the self-signed CA in `mizzen-ca`, a plug-in CA in
`cacerts` (Istio's name and layout), both in the control plane's namespace.

Several replicas start at once: each reads `mizzen-ca`; when it is absent each makes a root and
creates the Secret; the API server lets exactly one create succeed (409 Conflict for the others),
and the losers read the winner's Secret back, so all of them sign with one CA.
"""

# ruff: noqa: S105 (names of tokens and secrets, not secrets)

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from control.plane.ca.kube_calls import KubeCallError, KubeJson
from control.plane.ca.material import FILES, MAX_FILE_BYTES, CaMaterial, CaMaterialError
from control.plane.ca.store import CaStoreError

CA_SECRET: Final = "mizzen-ca"
PLUGIN_SECRET: Final = "cacerts"
SECRET_TYPE: Final = "istio.io/ca-root"  # the type Istio gives its self-signed CA Secret


def _path(namespace: str, name: str | None = None) -> str:
    base = f"/api/v1/namespaces/{namespace}/secrets"
    return base if name is None else f"{base}/{name}"


def _decode(secret: dict[str, Any], where: str) -> CaMaterial:
    data = secret.get("data") or {}
    if not isinstance(data, dict):
        raise CaStoreError(f"{where}: data is not a mapping")
    files: dict[str, bytes] = {}
    for name in FILES:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > MAX_FILE_BYTES * 4 // 3 + 4:
            raise CaStoreError(f"{where}: {name} is not a string of at most {MAX_FILE_BYTES} bytes")
        try:
            files[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise CaStoreError(f"{where}: {name} is not base64") from None
    try:
        return CaMaterial.from_files(files)
    except CaMaterialError as error:
        raise CaStoreError(f"{where}: {error}") from None


class KubeSecretSource:
    """A plug-in CA in a Secret (read only)."""

    def __init__(self, api: KubeJson, namespace: str, name: str = PLUGIN_SECRET) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name

    def describe(self) -> str:
        return f"Secret {self.namespace}/{self.name}"

    def load(self) -> CaMaterial | None:
        try:
            secret = self.api.call("GET", _path(self.namespace, self.name))
        except KubeCallError as error:
            if error.status == 404:
                return None
            raise CaStoreError(f"{self.describe()}: {error}") from None
        return _decode(secret, self.describe())


class KubeCaStore(KubeSecretSource):
    """The self-signed CA in the Secret `mizzen-ca`, created if absent."""

    def __init__(self, api: KubeJson, namespace: str, name: str = CA_SECRET) -> None:
        super().__init__(api, namespace, name)

    def create(self, material: CaMaterial) -> CaMaterial:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "mizzen"},
            },
            "type": SECRET_TYPE,
            "data": {
                name: base64.b64encode(value).decode()
                for name, value in material.as_files().items()
                if value
            },
        }
        try:
            self.api.call("POST", _path(self.namespace), body)
        except KubeCallError as error:
            if error.status != 409:
                raise CaStoreError(f"{self.describe()}: cannot create: {error}") from None
            winner = self.load()  # another replica was first: take its CA
            if winner is None:
                raise CaStoreError(f"{self.describe()}: conflict, then absent") from None
            return winner
        return material
