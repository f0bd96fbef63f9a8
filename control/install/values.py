"""The install's values: one frozen model every rendered object is derived from.

Keys are camelCase, as in the rendered YAML and Istio's own values; `--set a.b=c` names them by
their dotted path. An unknown key is refused with its path, never ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from injector.config import DEFAULT_IMAGE, Image, Quantity

_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _label(text: str) -> str:
    """A DNS-1123 label (namespaces, revisions): names are built from it."""
    if len(text) > 40 or not _LABEL.fullmatch(text):
        raise ValueError(f"{text!r} is not a DNS-1123 label of at most 40 characters")
    return text


def _domain(text: str) -> str:
    if len(text) > 253 or not _DOMAIN.fullmatch(text):
        raise ValueError(f"{text!r} is not a DNS domain")
    return text


Label = Annotated[str, AfterValidator(_label)]
Domain = Annotated[str, AfterValidator(_domain)]


class ValuesError(ValueError):
    """Values that cannot be used: one line naming the key."""


class _Values(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Resources(_Values):
    cpu: Quantity = "500m"
    memory: Quantity = "512Mi"
    memory_limit: Quantity = "2Gi"


class ControlPlaneValues(_Values):
    replicas: int = Field(2, ge=1, le=50)
    resources: Resources = Field(default_factory=Resources)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    termination_grace_period_seconds: int = Field(30, ge=1, le=3600)


class WebhookValues(_Values):
    failure_policy: Literal["Fail", "Ignore"] = "Fail"
    timeout_seconds: int = Field(10, ge=1, le=30)


class ProxyValues(_Values):
    """The injection settings an operator chooses (the rest follow from the install)."""

    native_sidecar: bool = True
    hold_application_until_proxy_starts: bool = False
    cpu: Quantity = "100m"
    memory: Quantity = "128Mi"
    cpu_limit: Quantity = "2000m"
    memory_limit: Quantity = "1024Mi"


class OutboundTrafficPolicy(_Values):
    mode: Literal["ALLOW_ANY", "REGISTRY_ONLY"] = "ALLOW_ANY"


class MeshValues(_Values):
    outbound_traffic_policy: OutboundTrafficPolicy = Field(default_factory=OutboundTrafficPolicy)


class InstallValues(_Values):
    namespace: Label = "mizzen-system"
    revision: Label = "default"
    image: Image = DEFAULT_IMAGE
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    trust_domain: Domain = "cluster.local"
    cluster_domain: Domain = "cluster.local"
    control_plane: ControlPlaneValues = Field(default_factory=ControlPlaneValues)
    webhook: WebhookValues = Field(default_factory=WebhookValues)
    proxy: ProxyValues = Field(default_factory=ProxyValues)
    mesh: MeshValues = Field(default_factory=MeshValues)
    # Names of files in the addons directory (`manifests/addons/<name>.yaml`), rendered as given.
    addons: tuple[Label, ...] = ()


def _field_for(model: type[BaseModel], segment: str) -> tuple[str, Any] | None:
    """The field a key segment names (its camelCase alias, or its Python name)."""
    for name, info in model.model_fields.items():
        if segment in (info.alias, name):
            return name, info.annotation
    return None


def _known(model: type[BaseModel]) -> str:
    return ", ".join(info.alias or name for name, info in model.model_fields.items())


def _is_group(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_list(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is tuple


def parse_sets(pairs: Sequence[str]) -> dict[str, Any]:
    """`key.path=value` pairs into a nested mapping of aliases; every key checked against the
    model, so a typo is an error naming it. Values stay text (lists: comma-separated) and are
    typed by the model."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValuesError(f"--set {pair[:80]!r}: expected key=value")
        model: type[BaseModel] = InstallValues
        node = tree
        segments = key.split(".")
        for index, segment in enumerate(segments):
            where = ".".join(segments[: index + 1])
            found = _field_for(model, segment)
            if found is None:
                raise ValuesError(f"--set {key}: unknown key {where!r} (known: {_known(model)})")
            name, annotation = found
            alias = model.model_fields[name].alias or name
            last = index == len(segments) - 1
            if _is_group(annotation):
                if last:
                    raise ValuesError(f"--set {key}: {where!r} is a group of keys, not a value")
                model = annotation
                node = node.setdefault(alias, {})
            elif not last:
                raise ValuesError(f"--set {key}: {where!r} is a value, it has no keys below")
            else:
                node[alias] = [v for v in value.split(",") if v] if _is_list(annotation) else value
    return tree


def _merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def values_from(sets: Sequence[str] = (), **shortcuts: str | None) -> InstallValues:
    """The values of `--set` pairs, then shortcut flags (`revision=`, `image=`), which win."""
    tree = parse_sets(sets)
    tree = _merge(tree, {k: v for k, v in shortcuts.items() if v is not None})
    try:
        return InstallValues.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "values"
        message = first["msg"].removeprefix("Value error, ")
        raise ValuesError(f"{where}: {message}") from None
