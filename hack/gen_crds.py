"""Generate manifests/crds/*.yaml: Istio's CRDs with structural OpenAPI v3 schemas from the models.

    .venv/bin/python hack/gen_crds.py          # write the files
    .venv/bin/python hack/gen_crds.py --check  # exit 1 when the committed files drift

The schema follows the pydantic models field by field (camelCase names, enums, arrays, maps,
minimums), so the apiserver prunes and types exactly what the validating webhook accepts.
`x-kubernetes-preserve-unknown-fields` appears only on `status`, which the mesh does not model.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any, Final

import annotated_types
import yaml
from pydantic import BaseModel

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from control.api import kinds  # noqa: E402 - after the path set-up above
from control.api.registry import SPEC_MODELS  # noqa: E402

OUT_DIR: Final = ROOT / "manifests" / "crds"
SHORT_NAMES: Final[dict[str, list[str]]] = {
    "VirtualService": ["vs"],
    "DestinationRule": ["dr"],
    "ServiceEntry": ["se"],
    "Sidecar": [],
    "Gateway": ["gw"],
    "PeerAuthentication": ["pa"],
    "AuthorizationPolicy": ["ap"],
    "RequestAuthentication": ["ra"],
}
PRINTER_COLUMNS: Final[dict[str, list[dict[str, str]]]] = {
    "VirtualService": [
        {"name": "Gateways", "type": "string", "jsonPath": ".spec.gateways"},
        {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
    ],
    "DestinationRule": [{"name": "Host", "type": "string", "jsonPath": ".spec.host"}],
    "ServiceEntry": [
        {"name": "Hosts", "type": "string", "jsonPath": ".spec.hosts"},
        {"name": "Location", "type": "string", "jsonPath": ".spec.location"},
        {"name": "Resolution", "type": "string", "jsonPath": ".spec.resolution"},
    ],
    "PeerAuthentication": [{"name": "Mode", "type": "string", "jsonPath": ".spec.mtls.mode"}],
    "AuthorizationPolicy": [{"name": "Action", "type": "string", "jsonPath": ".spec.action"}],
}
_AGE: Final = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0].strip() if text and text.strip() else None


def type_schema(annotation: Any) -> dict[str, Any]:
    """The OpenAPI v3 schema of one Python type as the models use them."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        schema = type_schema(args[0])
        for meta in args[1:]:
            schema.update(_constraints(meta))
        return schema
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"unions are not structural: {annotation}")
        return type_schema(present[0])
    if origin is typing.Literal:
        return {"type": "string", "enum": list(args)}
    if origin in (tuple, list):
        return {"type": "array", "items": type_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": type_schema(args[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_schema(annotation)
    scalars = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if annotation in scalars:
        return {"type": scalars[annotation]}
    raise TypeError(f"no schema for {annotation!r}")


def _constraints(meta: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in getattr(meta, "metadata", [meta]):
        if isinstance(item, annotated_types.Ge):
            found["minimum"] = item.ge
        elif isinstance(item, annotated_types.Le):
            found["maximum"] = item.le
    return found


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        if field.metadata:
            annotation = typing.Annotated[(annotation, *field.metadata)]
        schema = type_schema(annotation)
        description = _first_line(field.description)
        if description:
            schema = {"description": description, **schema}
        properties[field.alias or name] = schema
    result: dict[str, Any] = {"type": "object", "properties": dict(sorted(properties.items()))}
    description = _first_line(model.__doc__)
    if description:
        result = {"description": description, **result}
    return result


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in {"a", "e", "i", "o", "u"}:
        return lower[:-1] + "ies"  # policy -> policies; gateway -> gateways
    return lower + "s"


def crd(group: str, kind: str) -> dict[str, Any]:
    spec_schema = model_schema(SPEC_MODELS[kind])
    spec_schema["description"] = f"The spec of a {kind} (Istio's {group} API)."
    schema = {
        "type": "object",
        "properties": {
            "spec": spec_schema,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    columns = [*PRINTER_COLUMNS.get(kind, []), _AGE]
    versions = [
        {
            "name": version,
            "served": True,
            "storage": index == 0,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {"status": {}},
            "additionalPrinterColumns": columns,
        }
        for index, version in enumerate(kinds.VERSIONS[group])
    ]
    plural = _plural(kind)
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "categories": ["istio-io", group.replace(".io", "-io").replace(".", "-")],
    }
    if SHORT_NAMES[kind]:
        names["shortNames"] = SHORT_NAMES[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{group}",
            "labels": {"app.kubernetes.io/part-of": "mizzen"},
        },
        "spec": {"group": group, "names": names, "scope": "Namespaced", "versions": versions},
    }


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors (each version repeats its schema, as the apiserver expects)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_all() -> dict[str, str]:
    """File name -> YAML text, for every mesh kind."""
    files: dict[str, str] = {}
    for group, group_kinds in kinds.VALIDATED_KINDS.items():
        for kind in group_kinds:
            body = yaml.dump(crd(group, kind), Dumper=_Dumper, sort_keys=False, width=100)
            header = "# Generated by hack/gen_crds.py from control/api/models; do not edit.\n"
            files[f"{group}_{_plural(kind)}.yaml"] = header + body
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when committed files drift")
    args = parser.parse_args(argv)
    rendered = render_all()
    if args.check:
        stale = [
            name
            for name, text in rendered.items()
            if not (OUT_DIR / name).is_file() or (OUT_DIR / name).read_text() != text
        ]
        extra = sorted({p.name for p in OUT_DIR.glob("*.yaml")} - set(rendered))
        for name in [*stale, *extra]:
            print(f"manifests/crds/{name} is out of date; run hack/gen_crds.py", file=sys.stderr)
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (OUT_DIR / name).write_text(text)
    print(f"wrote {len(rendered)} CRDs to {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
