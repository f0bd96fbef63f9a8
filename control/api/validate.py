"""`validate_resource`: one Kubernetes object of a mesh kind in, a ValidationReport out.

The webhook's `/validate`, `mizzen validate` and the config sources all call this, so an object
is judged the same everywhere. It never raises: a hostile or malformed object gets errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from control.api import errors, guard, kinds
from control.api.registry import RULES, SPEC_MODELS, MeshResource
from control.api.report import FieldError, ValidationReport, single_error
from control.api.rules.context import Findings

_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TIMESTAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)


def validate_resource(obj: Mapping[str, Any]) -> ValidationReport:
    """Validate one object of a mesh kind (an unknown kind in a mesh group is an error)."""
    return inspect_resource(obj)[0]


class InvalidResourceError(ValueError):
    """Raised by parse_resource; carries the report that refused the object."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(str(report))
        self.report = report


def parse_resource(obj: Mapping[str, Any]) -> MeshResource[Any]:
    """The typed resource for a valid object; InvalidResourceError (with the report) otherwise."""
    report, resource = inspect_resource(obj)
    if resource is None or not report.ok:
        raise InvalidResourceError(report)
    return resource


def inspect_resource(obj: object) -> tuple[ValidationReport, MeshResource[Any] | None]:
    """Validate and, when valid, parse: one pass for consumers that need both."""
    try:
        return _inspect(obj)
    except RecursionError:
        return single_error("", "object nested too deeply"), None
    except Exception as error:  # the contract: never raise on any input
        return single_error("", f"internal validation error ({type(error).__name__})"), None


def _inspect(obj: object) -> tuple[ValidationReport, MeshResource[Any] | None]:
    if not isinstance(obj, Mapping):
        return single_error("", "a Kubernetes object must be a mapping"), None
    problem = guard.check_shape(obj)
    if problem is not None:
        return single_error(*problem), None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return single_error("apiVersion", "required string field"), None
    if not isinstance(kind, str) or not kind:
        return single_error("kind", "required string field"), None
    group, version = kinds.split_api_version(api_version)
    if group not in kinds.MESH_GROUPS:
        return single_error("apiVersion", f"{errors.shown(api_version)} is not a mesh group"), None
    if kind not in kinds.VALIDATED_KINDS[group]:
        known = ", ".join(kinds.VALIDATED_KINDS[group])
        message = f"unknown kind {errors.shown(kind)} in {group} (known: {known})"
        return single_error("kind", message), None
    if version not in kinds.VERSIONS[group]:
        served = ", ".join(kinds.VERSIONS[group])
        message = f"unsupported version {errors.shown(version)} of {group} (served: {served})"
        return single_error("apiVersion", message), None

    found: list[FieldError] = []
    metadata = obj.get("metadata")
    name, namespace = _check_metadata(metadata, found)
    spec_data = obj.get("spec")
    if spec_data is None:
        spec_data = {}
    if not isinstance(spec_data, Mapping):
        found.append(FieldError("spec", "must be an object"))
        return ValidationReport(errors=tuple(found)), None
    try:
        spec = SPEC_MODELS[kind].model_validate(spec_data)
    except ValidationError as error:
        found.extend(errors.from_pydantic(error, "spec"))
        return ValidationReport(errors=tuple(found)), None

    findings = Findings()
    RULES[kind](spec, findings)
    _check_dry_run(kind, spec, metadata, name, namespace, findings)
    if kind == "Gateway" and name and not _DNS1123_LABEL.fullmatch(name):  # no dots (Istio)
        findings.error("metadata.name", f"invalid gateway name: {errors.shown(name)}")
    report = ValidationReport(errors=(*found, *findings.errors), warnings=tuple(findings.warnings))
    if not report.ok:
        return report, None
    assert isinstance(metadata, Mapping)  # _check_metadata reported anything else
    resource = MeshResource(
        group=group,
        version=version,
        kind=kind,
        name=name,
        namespace=namespace,
        labels=_string_map(metadata.get("labels")),
        annotations=_string_map(metadata.get("annotations")),
        spec=spec,
        created=_timestamp(metadata.get("creationTimestamp")),
    )
    return report, resource


def _timestamp(value: object) -> str:
    """A creationTimestamp kept only in the API server's form (so strings order by time)."""
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        return value
    return ""


def _check_metadata(metadata: object, found: list[FieldError]) -> tuple[str, str | None]:
    if not isinstance(metadata, Mapping):
        found.append(FieldError("metadata", "required object"))
        return "", None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if name is None and isinstance(metadata.get("generateName"), str):
        name = ""
    elif not isinstance(name, str) or not name:
        found.append(FieldError("metadata.name", "required string field"))
        name = ""
    elif len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name):
        found.append(FieldError("metadata.name", f"{errors.shown(name)} {_NOT_SUBDOMAIN}"))
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63
        or not _DNS1123_LABEL.fullmatch(namespace)
    ):  # fmt: skip
        found.append(FieldError("metadata.namespace", f"{errors.shown(namespace)} {_NOT_LABEL}"))
        namespace = None
    for field in ("labels", "annotations"):
        value = metadata.get(field)
        if value is not None and (
            not isinstance(value, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            found.append(FieldError(f"metadata.{field}", "must map strings to strings"))
    return name, namespace if isinstance(namespace, str) else None


DRY_RUN: Final = "istio.io/dry-run"
# Go's strconv.ParseBool, which Istio uses for the annotation's value.
_GO_BOOLS: Final = frozenset({"1", "t", "T", "TRUE", "true", "True",
                              "0", "f", "F", "FALSE", "false", "False"})  # fmt: skip


def _check_dry_run(
    kind: str, spec: Any, metadata: object, name: str, namespace: str | None, findings: Findings
) -> None:
    """Istio's checkDryRunAnnotation: only an ALLOW or DENY AuthorizationPolicy may carry
    `istio.io/dry-run`, and only with a boolean value."""
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping) or DRY_RUN not in annotations:
        return
    value = annotations[DRY_RUN]
    where = f"metadata.annotations[{DRY_RUN}]"
    title = f"{namespace or ''}/{name}"
    if kind != "AuthorizationPolicy":
        findings.error(
            where, f"{title} has unsupported annotation {DRY_RUN}, please remove the annotation"
        )
        return
    action = spec.action or "ALLOW"
    if action not in ("ALLOW", "DENY"):
        findings.error(
            where,
            f"the annotation {DRY_RUN} currently only supports action ALLOW/DENY, "
            f"found action {action} in {title}",
        )
    elif value not in _GO_BOOLS:
        findings.error(
            where,
            f"{title} has annotation {DRY_RUN} with invalid value ({errors.shown(value)}): "
            "not a boolean",
        )


def _string_map(value: object) -> dict[str, str]:
    return dict(value) if isinstance(value, Mapping) else {}


_NOT_SUBDOMAIN: Final = (
    "is not a valid name: a lowercase RFC 1123 subdomain must consist of lower case "
    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
)
_NOT_LABEL: Final = (
    "is not a valid namespace: a lowercase RFC 1123 label must consist of lower case "
    "alphanumeric characters or '-', and must start and end with an alphanumeric character"
)
