"""Duty: the ConfigMap `mizzen-ca-root-cert` (key `root-cert.pem`) in every namespace holds the
mesh's current roots, which the injected proxies mount to verify the control plane. New
namespaces get it as they appear; a changed or deleted one is put back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from control.plane.kube.rest import KubeError, KubeRest
from control.plane.leader.seams import RootBundleSource

log = logging.getLogger("mizzen.leader")
# No mesh pod runs there (the injector never injects them), so no root certificate either.
SKIPPED_NAMESPACES: Final = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)


@dataclass(frozen=True, slots=True)
class Write:
    action: Literal["create", "update"]
    namespace: str
    body: dict[str, Any]


def _live(namespace: dict[str, Any]) -> bool:
    metadata = namespace.get("metadata") or {}
    phase = (namespace.get("status") or {}).get("phase")
    return (
        isinstance(metadata.get("name"), str)
        and metadata["name"] not in SKIPPED_NAMESPACES
        and not metadata.get("deletionTimestamp")
        and phase != "Terminating"
    )


def plan_root_config_maps(
    namespaces: Iterable[dict[str, Any]],
    existing: Iterable[dict[str, Any]],
    pem: str,
    name: str,
    key: str,
    labels: dict[str, str],
) -> list[Write]:
    """The creates and updates that make every live namespace hold `{key: pem}` in ConfigMap
    `name`. Pure: the namespaces and the existing ConfigMaps of that name in, writes out."""
    by_namespace = {
        cm["metadata"].get("namespace"): cm
        for cm in existing
        if isinstance(cm.get("metadata"), dict)
    }
    writes = []
    for namespace in sorted(
        (n for n in namespaces if _live(n)), key=lambda n: str(n["metadata"]["name"])
    ):
        ns = namespace["metadata"]["name"]
        current = by_namespace.get(ns)
        if current is None:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
                "data": {key: pem},
            }
            writes.append(Write("create", ns, body))
            continue
        current_labels = current["metadata"].get("labels") or {}
        if current.get("data") == {key: pem} and labels.items() <= current_labels.items():
            continue
        metadata = {
            "name": name,
            "namespace": ns,
            "labels": {**current_labels, **labels},
            "resourceVersion": current["metadata"].get("resourceVersion"),
        }
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: pem}}
        writes.append(Write("update", ns, body))
    return writes


class RootConfigMapDuty:
    name = "root-configmaps"

    def __init__(
        self,
        rest: KubeRest,
        roots: RootBundleSource,
        is_leader: Callable[[], bool],
        config_map: str,
        key: str,
        labels: dict[str, str],
    ) -> None:
        self.rest = rest
        self.roots = roots
        self.is_leader = is_leader
        self.config_map = config_map
        self.key = key
        self.labels = labels

    def reconcile(self) -> int:
        """One pass; the number of writes made. Raises KubeError (the runner retries)."""
        pem = self.roots.root_bundle()
        namespaces = self.rest.list_items("/api/v1/namespaces")
        existing = self.rest.list_items(
            "/api/v1/configmaps", [("fieldSelector", f"metadata.name={self.config_map}")]
        )
        made = 0
        for write in plan_root_config_maps(
            namespaces, existing, pem, self.config_map, self.key, self.labels
        ):
            if not self.is_leader():
                break  # lost the Lease meanwhile: the next leader carries on
            collection = f"/api/v1/namespaces/{write.namespace}/configmaps"
            try:
                if write.action == "create":
                    self.rest.call("POST", collection, body=write.body)
                else:
                    self.rest.call("PUT", f"{collection}/{self.config_map}", body=write.body)
            except KubeError as error:
                if not (error.conflict or error.not_found):
                    raise
                # Raced with someone (or the namespace went away): the next pass sees it.
                log.info(
                    "root certificate in %s: %s; again at the next pass",
                    write.namespace,
                    error.reason,
                )
                continue
            made += 1
        if made:
            log.info("root certificate written to %d namespaces", made)
        return made
