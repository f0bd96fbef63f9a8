"""List the spec field paths of Istio's CRDs, `<Kind> <path>` a line (tests/api/istio_fields.txt).

    .venv/bin/python hack/istio_fields.py crd-all.gen.yaml > tests/api/istio_fields.txt

The input is Istio's own CRD file (`manifests/charts/base/files/crd-all.gen.yaml` of an Istio
release, or `kubectl get crd -o yaml` of a cluster with Istio installed). For each kind mizzen
validates, the first version's `spec` schema is walked: `.` joins properties, `[]` marks array
items and `{}` map values (`subsets[].labels{}`). tests/api/test_istio_fields.py compares the
committed list with the same walk over mizzen's models, so a field Istio has and mizzen does not
know shows up as a test failure unless it is in that test's allow-list with a reason.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from control.api.kinds import VALIDATED_KINDS  # noqa: E402 - after the path set-up above

KINDS: Final = frozenset(kind for kinds in VALIDATED_KINDS.values() for kind in kinds)


def field_paths(schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every path under an OpenAPI v3 object schema, leaves and inner objects alike."""
    for name, child in sorted((schema.get("properties") or {}).items()):
        path = f"{prefix}.{name}" if prefix else name
        yield path
        yield from _below(child, path)


def _below(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    if schema.get("properties"):
        yield from field_paths(schema, path)
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _below(items, f"{path}[]")
    values = schema.get("additionalProperties")
    if isinstance(values, Mapping):
        yield from _below(values, f"{path}{{}}")


def crd_paths(documents: Iterable[Any]) -> list[str]:
    """`<Kind> <path>` for the validated kinds among CRD documents, sorted."""
    lines: set[str] = set()
    for crd in documents:
        if not isinstance(crd, Mapping) or crd.get("kind") != "CustomResourceDefinition":
            continue
        kind = crd["spec"]["names"]["kind"]
        if kind not in KINDS:
            continue
        version = crd["spec"]["versions"][0]
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        lines.update(f"{kind} {path}" for path in field_paths(spec))
    return sorted(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("crds", type=Path, help="Istio's CRD YAML (crd-all.gen.yaml)")
    args = parser.parse_args(argv)
    text = args.crds.read_text()
    sys.stdout.write("".join(f"{line}\n" for line in crd_paths(yaml.safe_load_all(text))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
