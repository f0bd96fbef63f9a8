"""Reading and writing the one Lease (the election's I/O), behind a Protocol so the elector can
be driven by any store; `KubeLeaseStore` is the Kubernetes one."""

from __future__ import annotations

from typing import Any, Protocol

from control.plane.kube.rest import KubeError, KubeRest
from control.plane.leader.lease import LeaseRecord

LEASE_API = "/apis/coordination.k8s.io/v1"


class LeaseConflictError(Exception):
    """Someone else wrote the Lease first (409): read it again."""


class LeaseUnavailableError(Exception):
    """The Lease could not be read or written (unreachable, forbidden, ...)."""


class LeaseStore(Protocol):
    def read(self) -> tuple[LeaseRecord, str] | None:
        """The record and its resourceVersion; None when there is no Lease."""
        ...

    def create(self, record: LeaseRecord) -> str:
        """Create the Lease; its resourceVersion. LeaseConflictError when it exists already."""
        ...

    def write(self, record: LeaseRecord, version: str) -> str:
        """Replace the Lease last read at `version`; LeaseConflictError when it changed since."""
        ...


class KubeLeaseStore:
    def __init__(
        self, rest: KubeRest, namespace: str, name: str, labels: dict[str, str] | None = None
    ) -> None:
        self.rest = rest
        self.namespace = namespace
        self.name = name
        self.labels = labels or {}
        self._collection = f"{LEASE_API}/namespaces/{namespace}/leases"

    def _body(self, record: LeaseRecord, version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = self.labels
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": record.to_spec(),
        }

    @staticmethod
    def _version(obj: dict[str, Any]) -> str:
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if not isinstance(version, str) or not version:
            raise LeaseUnavailableError("the Lease has no resourceVersion")
        return version

    def read(self) -> tuple[LeaseRecord, str] | None:
        try:
            obj = self.rest.get(f"{self._collection}/{self.name}")
        except KubeError as error:
            raise LeaseUnavailableError(str(error)) from None
        if obj is None:
            return None
        return LeaseRecord.from_spec(obj.get("spec")), self._version(obj)

    def create(self, record: LeaseRecord) -> str:
        return self._send("POST", self._collection, self._body(record, None))

    def write(self, record: LeaseRecord, version: str) -> str:
        return self._send("PUT", f"{self._collection}/{self.name}", self._body(record, version))

    def _send(self, method: str, path: str, body: dict[str, Any]) -> str:
        try:
            return self._version(self.rest.call(method, path, body=body))
        except KubeError as error:
            if error.conflict:
                raise LeaseConflictError(str(error)) from None
            raise LeaseUnavailableError(str(error)) from None
