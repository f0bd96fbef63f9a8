"""Un-injection: the pod as it was before a previous injection, so that it can be rendered again.

Only what the status annotation recorded is removed, and only under the mesh's reserved names;
probes the injector rewrote get their original handlers back from the proxy's environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from injector import contract
from injector.metadata import Status, without_recorded
from injector.pod import Json, mappings
from injector.probes import restore_probes
from injector.prometheus import restore


def _app_probes(containers: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    for container in containers:
        if container.get("name") != contract.PROXY_CONTAINER_NAME:
            continue
        env = container.get("env")
        for item in env if isinstance(env, list) else []:
            if isinstance(item, Mapping) and item.get("name") == contract.ENV_APP_PROBES:
                try:
                    value = json.loads(str(item.get("value")))
                except ValueError:
                    return {}
                return value if isinstance(value, dict) else {}
    return {}


def uninject(
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> tuple[Json, Json]:
    """New metadata and spec without the previous injection (the inputs are not changed)."""
    status = Status.from_json(annotations[contract.STATUS_ANNOTATION])
    mesh_containers = contract.MESH_CONTAINER_NAMES & {*status.init_containers, *status.containers}
    mesh_volumes = contract.MESH_VOLUME_NAMES & set(status.volumes)
    init_containers = mappings(spec, "initContainers", "spec.initContainers")
    containers = mappings(spec, "containers", "spec.containers")
    originals = _app_probes([*init_containers, *containers])

    new_spec: Json = dict(spec)
    if "initContainers" in spec:
        kept_init = [c for c in init_containers if c.get("name") not in mesh_containers]
        new_spec["initContainers"] = restore_probes(kept_init, originals)
    if "containers" in spec:
        kept = [c for c in containers if c.get("name") not in mesh_containers]
        new_spec["containers"] = restore_probes(kept, originals)
    if "volumes" in spec:
        volumes = mappings(spec, "volumes", "spec.volumes")
        new_spec["volumes"] = [v for v in volumes if v.get("name") not in mesh_volumes]

    new_metadata: Json = dict(metadata)
    new_metadata["labels"] = without_recorded(labels, status.labels)
    new_annotations = without_recorded(annotations, status.annotations)
    proxies = [c for c in [*init_containers, *containers] if c.get("name") in mesh_containers]
    for proxy in proxies:  # the app's own scrape annotations, kept in the proxy's env
        new_annotations = restore(new_annotations, proxy.get("env"))
    new_annotations.pop(contract.STATUS_ANNOTATION, None)
    new_metadata["annotations"] = new_annotations
    return new_metadata, new_spec
