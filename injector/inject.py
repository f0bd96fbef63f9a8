"""`inject`: the one code path behind the webhook, `mizzen inject` and the tests.

Pure: no files, environment, network or clock. The pod is read through checked accessors, never
mutated; the injected pod is a new dict that shares unchanged subtrees with the input (treat both
as read-only), and the patch is a diff of the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from injector import contract
from injector.annotations import pod_settings
from injector.config import InjectionConfig
from injector.decision import decide
from injector.model import InjectionContext, InjectionError, InjectionResult
from injector.patch import make_patch
from injector.pod import mapping, string_map
from injector.render import render
from injector.uninject import uninject
from injector.workload import workload_name


def inject(
    pod: Mapping[str, Any],
    context: InjectionContext,
    config: InjectionConfig,
    *,
    with_patch: bool = True,
) -> InjectionResult:
    """Injects the pod, or says why not; raises `InjectionError` for bad input.

    `with_patch=False` skips the diff (the patch is then empty): for callers that only want the
    injected pod, such as `mizzen inject` printing YAML, where the diff is most of the work."""
    if not isinstance(pod, Mapping):
        raise InjectionError("pod", "must be an object")
    metadata = mapping(pod, "metadata", "metadata")
    spec = mapping(pod, "spec", "spec")
    labels = string_map(metadata, "labels", "metadata.labels")
    annotations = string_map(metadata, "annotations", "metadata.annotations")

    decision = decide(labels, annotations, spec, context, config)
    if decision.skip_reason is not None:
        return InjectionResult(
            pod=dict(pod),
            patch=[],
            skip_reason=decision.skip_reason,
            warnings=decision.warnings,
            explanation=(f"not injected: {decision.rule}",),
        )
    explanation = [f"injected: {decision.rule}"]
    if contract.STATUS_ANNOTATION in annotations:
        metadata, spec = uninject(metadata, spec, labels, annotations)
        labels = string_map(metadata, "labels", "metadata.labels")
        annotations = string_map(metadata, "annotations", "metadata.annotations")
        explanation.append("the pod was injected before: its injection is rendered again")
    settings = pod_settings(annotations, config)
    workload = context.workload_name or workload_name(pod)
    rendered = render(metadata, spec, labels, annotations, settings, config, workload)
    injected = {**pod, "metadata": rendered.metadata, "spec": rendered.spec}
    return InjectionResult(
        pod=injected,
        patch=make_patch(pod, injected, rendered.fresh) if with_patch else [],
        warnings=(*decision.warnings, *rendered.warnings),
        explanation=(*explanation, *rendered.notes),
    )
