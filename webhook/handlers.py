"""What each route decides, given a well-formed AdmissionRequest. Synchronous and free of I/O,
so the app can run them inline or in a worker thread; failures are raised, and mapped to
answers in one place (`webhook.outcome.verdict_for_failure`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from control.api import is_mesh_group
from injector import InjectionConfig, InjectionContext, InjectionResult, workload_name
from webhook.outcome import BadObjectError, Verdict
from webhook.review import AdmissionRequest

INJECTED: Final = "injected"
NOT_APPLICABLE: Final = "not_applicable"


class Injector(Protocol):
    """The injector's entry point (`injector.inject`); a seam so tests can make it fail."""

    def __call__(
        self, pod: Mapping[str, Any], context: InjectionContext, config: InjectionConfig
    ) -> InjectionResult: ...


class Report(Protocol):
    """What a validator returns (`control.api.ValidationReport` has this shape)."""

    @property
    def ok(self) -> bool: ...

    @property
    def errors(self) -> Sequence[object]: ...

    @property
    def warnings(self) -> Sequence[str]: ...


class Validator(Protocol):
    """Checks one mesh resource (`control.api.validate_resource`)."""

    def __call__(self, resource: dict[str, Any], /) -> Report: ...


def _is_pod_create(request: AdmissionRequest) -> bool:
    kind, resource = request.kind, request.resource
    pod_kind = kind.group == "" and kind.kind == "Pod"
    pod_resource = resource.group == "" and resource.resource in ("pods", "")
    return request.operation == "CREATE" and pod_kind and pod_resource and not request.sub_resource


class PodInjection:
    """`/inject`: a pod CREATE gets the sidecar; anything else passes unchanged.

    The API server's selectors already chose the pod, so the namespace counts as enabled
    (`namespace_labels=None`); the pod's own opt-out and the never-inject rules still apply.
    The webhook has no side effects, so a dry run is answered like any other request."""

    def __init__(self, config: InjectionConfig, injector: Injector) -> None:
        self._config = config
        self._inject = injector

    def __call__(self, request: AdmissionRequest) -> Verdict:
        if not _is_pod_create(request):
            return Verdict(allowed=True, decision=NOT_APPLICABLE)
        pod = request.object
        if not isinstance(pod, dict):
            raise BadObjectError("request.object", "expected a Pod object")
        metadata = pod.get("metadata", {})
        if not isinstance(metadata, dict):
            raise BadObjectError("request.object.metadata", "expected an object")
        namespace = request.namespace or metadata.get("namespace")
        if not isinstance(namespace, str) or not namespace:
            raise BadObjectError("request.namespace", "missing: cannot tell where the pod runs")
        context = InjectionContext(
            namespace=namespace, namespace_labels=None, workload_name=workload_name(pod)
        )
        result = self._inject(pod, context, self._config)
        if result.skip_reason is not None:
            return Verdict(
                allowed=True, warnings=result.warnings, decision=result.skip_reason.value
            )
        patch = list(result.patch) or None
        return Verdict(allowed=True, patch=patch, warnings=result.warnings, decision=INJECTED)


class ResourceValidation:
    """`/validate`: a mesh resource CREATE or UPDATE is checked; DELETE passes, and so does
    anything outside Istio's API groups (not ours to judge, should a configuration send it)."""

    def __init__(self, validator: Validator) -> None:
        self._validate = validator

    def __call__(self, request: AdmissionRequest) -> Verdict:
        if request.operation not in ("CREATE", "UPDATE"):
            return Verdict(allowed=True)
        resource = request.object
        if not isinstance(resource, dict):
            raise BadObjectError("request.object", "expected a resource object")
        if not is_mesh_group(resource.get("apiVersion"), resource.get("kind")):
            return Verdict(allowed=True)
        report = self._validate(resource)
        warnings = tuple(report.warnings)
        if report.ok:
            return Verdict(allowed=True, warnings=warnings)
        message = "; ".join(str(error) for error in report.errors) or "invalid resource"
        return Verdict(allowed=False, code=400, message=message, warnings=warnings)
