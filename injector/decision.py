"""Whether a pod is injected, and the rule that decided: Istio's rules, as data.

The webhook's selectors (namespace label `istio-injection` or `istio.io/rev`, pod label
`sidecar.istio.io/inject`) are re-checked here, so calling the injector directly decides as the
webhook would. The result names the rule, for logs and `mizzen inject --explain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from injector.config import InjectionConfig
from injector.model import InjectionContext, SkipReason

INJECT_KEY: Final = "sidecar.istio.io/inject"
NAMESPACE_INJECTION_LABEL: Final = "istio-injection"
REVISION_LABEL: Final = "istio.io/rev"
ISTIO_STATUS_ANNOTATION: Final = "sidecar.istio.io/status"
NEVER_INJECTED_NAMESPACES: Final = frozenset(
    {"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}
)
# Istio (since 1.27, pkg/kube/inject injectRequired) counts exactly "true" and "false"; any other
# spelling ("yes", "True", "no") is logged and the default policy applies.
EXACT_VALUES_NOTE: Final = (
    'only exactly "true" or "false" count (as in Istio since 1.27); '
    "the namespace's default applies"
)


@dataclass(frozen=True)
class Decision:
    skip_reason: SkipReason | None
    rule: str
    warnings: tuple[str, ...] = ()


def _pod_choice(
    labels: Mapping[str, str], annotations: Mapping[str, str]
) -> tuple[bool | None, str, list[str]]:
    """The pod's own say: True (opt in), False (opt out) or None (no say), with its source."""
    warnings: list[str] = []
    if INJECT_KEY in labels:
        source, value = "label", labels[INJECT_KEY]
    elif INJECT_KEY in annotations:
        source, value = "annotation", annotations[INJECT_KEY]
    else:
        return None, "", warnings
    if not value:  # Istio: an empty value is no say, silently
        return None, source, warnings
    if value == "true":
        return True, source, warnings
    if value == "false":
        return False, source, warnings
    warnings.append(f"{source} {INJECT_KEY}={value!r} ignored: {EXACT_VALUES_NOTE}")
    return None, source, warnings


def decide(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    spec: Mapping[str, Any],
    context: InjectionContext,
    config: InjectionConfig,
) -> Decision:
    """Applies the rules in Istio's order; the first that matches decides."""
    namespace = context.namespace
    if namespace in NEVER_INJECTED_NAMESPACES or namespace == config.mesh_namespace:
        return Decision(SkipReason.IGNORED_NAMESPACE, f"namespace {namespace} is never injected")
    if spec.get("hostNetwork") is True:
        return Decision(SkipReason.HOST_NETWORK, "spec.hostNetwork is true")
    if ISTIO_STATUS_ANNOTATION in annotations:
        return Decision(
            SkipReason.ISTIO_SIDECAR_PRESENT, f"the pod carries {ISTIO_STATUS_ANNOTATION}"
        )
    choice, source, warnings = _pod_choice(labels, annotations)
    found = tuple(warnings)
    ns_labels = (
        {NAMESPACE_INJECTION_LABEL: "enabled"}
        if context.namespace_labels is None
        else context.namespace_labels
    )
    ns_injection = ns_labels.get(NAMESPACE_INJECTION_LABEL)
    ns_revision = ns_labels.get(REVISION_LABEL)
    pod_revision = labels.get(REVISION_LABEL)

    if ns_injection == "disabled":
        return Decision(
            SkipReason.NAMESPACE_DISABLED,
            f"namespace {namespace} is labelled istio-injection=disabled (wins over the pod)",
            found,
        )
    if ns_injection is not None and ns_injection != "enabled":
        return Decision(
            SkipReason.NAMESPACE_NOT_ENABLED,
            f"namespace {namespace} has istio-injection={ns_injection!r}, which selects nothing",
            found,
        )
    if ns_injection == "enabled":
        namespace_rule = f"namespace {namespace} is labelled istio-injection=enabled"
    elif ns_revision is not None:
        if ns_revision != config.revision:
            return Decision(
                SkipReason.REVISION_MISMATCH,
                f"namespace {namespace} has istio.io/rev={ns_revision}, "
                f"this mesh is revision {config.revision}",
                found,
            )
        namespace_rule = f"namespace {namespace} is labelled istio.io/rev={ns_revision}"
    else:
        namespace_rule = ""

    if choice is False:
        return Decision(
            SkipReason.POD_OPTED_OUT, f"the pod's {source} {INJECT_KEY} opts out", found
        )
    if namespace_rule:
        return Decision(None, namespace_rule, found)
    # An unlabelled namespace: only the pod's labels can select it (the webhook's object
    # selector sees labels, never annotations).
    if pod_revision is not None:
        if pod_revision != config.revision:
            return Decision(
                SkipReason.REVISION_MISMATCH,
                f"the pod's label istio.io/rev={pod_revision} names another revision",
                found,
            )
        return Decision(None, f"the pod's label istio.io/rev={pod_revision} opts in", found)
    if choice is True and source == "label":
        return Decision(None, f"the pod's label {INJECT_KEY}=true opts in", found)
    rule = f"namespace {namespace} is not labelled for injection"
    if choice is True:
        rule += (
            f"; the annotation {INJECT_KEY}=true cannot opt a pod in, because the webhook's "
            "object selector sees labels only: use the label"
        )
    return Decision(SkipReason.NAMESPACE_NOT_ENABLED, rule, found)
