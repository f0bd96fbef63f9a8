"""Duty: the control plane's own Mutating/ValidatingWebhookConfigurations carry the mesh's roots
as `caBundle`, so the API server trusts the webhook's serving certificate. Patched entry by
entry with a JSON patch guarded by `test` operations, so an edit made meanwhile (entries added,
reordered) fails the patch instead of being overwritten; the next pass reads again."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from typing import Any

from control.plane.kube.rest import JSON_PATCH, KubeError, KubeRest
from control.plane.leader.seams import RootBundleSource

log = logging.getLogger("mizzen.leader")
ADMISSION_API = "/apis/admissionregistration.k8s.io/v1"
FIELD_MANAGER = "mizzen-leader"


def ca_bundle_of(pem: str) -> str:
    return base64.b64encode(pem.encode("ascii")).decode("ascii")


def ca_bundle_patch(config: dict[str, Any], bundle: str) -> list[dict[str, Any]]:
    """The JSON patch that sets `bundle` on every entry that lacks it ([] when none does)."""
    operations: list[dict[str, Any]] = []
    for index, webhook in enumerate(config.get("webhooks") or []):
        if not isinstance(webhook, dict):
            continue
        client = webhook.get("clientConfig") or {}
        if client.get("caBundle") == bundle:
            continue
        operations += [
            {"op": "test", "path": f"/webhooks/{index}/name", "value": webhook.get("name")},
            {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": bundle},
        ]
    if operations:
        version = (config.get("metadata") or {}).get("resourceVersion")
        operations.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": version})
    return operations


class CaBundleDuty:
    name = "ca-bundle"

    def __init__(
        self,
        rest: KubeRest,
        roots: RootBundleSource,
        is_leader: Callable[[], bool],
        mutating: Sequence[str],
        validating: Sequence[str],
    ) -> None:
        self.rest = rest
        self.roots = roots
        self.is_leader = is_leader
        self.paths = [
            *(f"{ADMISSION_API}/mutatingwebhookconfigurations/{n}" for n in mutating),
            *(f"{ADMISSION_API}/validatingwebhookconfigurations/{n}" for n in validating),
        ]

    def reconcile(self) -> int:
        """One pass; the number of configurations patched. Raises KubeError."""
        bundle = ca_bundle_of(self.roots.root_bundle())
        patched = 0
        for path in self.paths:
            config = self.rest.get(path)
            if config is None:
                log.debug("%s does not exist (yet)", path)
                continue
            operations = ca_bundle_patch(config, bundle)
            if not operations or not self.is_leader():
                continue
            try:
                self.rest.call(
                    "PATCH",
                    path,
                    body=operations,
                    content_type=JSON_PATCH,
                    query=[("fieldManager", FIELD_MANAGER)],
                )
            except KubeError as error:
                if error.status not in (404, 409, 422):  # gone, or changed meanwhile
                    raise
                log.info("caBundle of %s: %s; again at the next pass", path, error.reason)
                continue
            patched += 1
            log.info("caBundle set on %s", path.rsplit("/", 1)[-1])
        return patched
