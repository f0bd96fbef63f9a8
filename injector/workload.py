"""The name of the workload a pod belongs to, read from its owner references.

Kiali and Istio's telemetry label pods with their workload (a Deployment, not its ReplicaSet), so
the webhook derives it the same way: a ReplicaSet's name minus its pod-template-hash, a Job's name
(or its CronJob's, when the Job carries a CronJob's timestamp suffix), a StatefulSet's,
DaemonSet's or ReplicationController's name; failing that, the pod's own name or the stem of its
`generateName`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

# A CronJob names its Jobs `<cronjob>-<scheduled time in minutes since the epoch>`.
_CRONJOB_JOB_RE: Final = re.compile(r"(.+)-[0-9]{8,10}")


def _controller_owner(metadata: Mapping[str, Any]) -> Mapping[str, Any] | None:
    owners = metadata.get("ownerReferences")
    if not isinstance(owners, list):
        return None
    candidates = [o for o in owners if isinstance(o, Mapping) and isinstance(o.get("name"), str)]
    for owner in candidates:
        if owner.get("controller") is True:
            return owner
    return candidates[0] if candidates else None


def _strip_template_hash(name: str, labels: Mapping[str, Any]) -> str:
    """A Deployment's ReplicaSet is `<deployment>-<pod-template-hash>`; the pod carries the hash
    as a label. Without the label the ReplicaSet stands alone and keeps its name."""
    template_hash = labels.get("pod-template-hash")
    if isinstance(template_hash, str) and template_hash and name.endswith("-" + template_hash):
        return name[: -len(template_hash) - 1]
    return name


def workload_name(pod: Mapping[str, Any]) -> str | None:
    """The workload's name, or None when the pod carries neither owners nor a name."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    raw_labels = metadata.get("labels")
    labels: Mapping[str, Any] = raw_labels if isinstance(raw_labels, Mapping) else {}
    owner = _controller_owner(metadata)
    if owner is not None:
        kind, owner_name = owner.get("kind"), str(owner["name"])
        if kind == "ReplicaSet":
            return _strip_template_hash(owner_name, labels)
        if kind == "Job":
            match = _CRONJOB_JOB_RE.fullmatch(owner_name)
            return match.group(1) if match else owner_name
        return owner_name
    pod_name = metadata.get("name")
    if isinstance(pod_name, str) and pod_name:
        return pod_name
    generate_name = metadata.get("generateName")
    if isinstance(generate_name, str) and generate_name.strip("-"):
        return _strip_template_hash(generate_name.rstrip("-"), labels)
    return None


def controller_workload_name(kind: str, name: str, template: Mapping[str, Any]) -> str:
    """The workload name of the pods a controller `kind`/`name` makes from `template`, as the
    webhook will derive it from their owner (so `mizzen inject` on a ReplicaSet or a Job and the
    webhook agree): a ReplicaSet's pods are owned by it, a Job's by it, and the rule above
    applies; a Deployment's or CronJob's pods are owned by a ReplicaSet or Job named after it,
    which the rule maps back to `name`."""
    if kind not in ("ReplicaSet", "Job"):
        return name
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    owner = {"kind": kind, "name": name, "controller": True}
    pod = {"metadata": {"labels": labels or {}, "ownerReferences": [owner]}}
    return workload_name(pod) or name
