"""The edge of the install commands: values from the flags, and the files the rendering reads
(the CRDs, the addons), found in the package (a wheel carries the CRDs) or in the source tree."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

import control
from control.config.files import FileReadError, read_text
from control.config.loader import parse_text
from control.install.render import Inputs
from control.install.values import InstallValues, values_from

MAX_FILE_BYTES: Final = 4 * 1024 * 1024
_PACKAGE_DATA: Final = Path(control.__file__).resolve().parent / "install" / "data"
_SOURCE_TREE: Final = Path(control.__file__).resolve().parent.parent / "manifests"


class InputError(ValueError):
    """A file or directory the rendering needs cannot be used; names it."""


def add_value_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--revision", help="install side by side under this revision (istio.io/rev)"
    )
    parser.add_argument("--image", help="the mesh's image (control plane, proxy and init)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value by its dotted key, e.g. controlPlane.replicas=3 (repeatable)",
    )
    parser.add_argument("--crds-dir", type=Path, help="the CRDs (default: the ones shipped)")
    parser.add_argument(
        "--addons-dir", type=Path, help="where addon <name>.yaml files are (default: shipped)"
    )


def values_of(args: argparse.Namespace) -> InstallValues:
    """Raises ValuesError naming the key."""
    return values_from(args.sets, revision=args.revision, image=args.image)


def _default_dir(name: str) -> Path | None:
    for candidate in (_PACKAGE_DATA / name, _SOURCE_TREE / name):
        if candidate.is_dir():
            return candidate
    return None


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        text = read_text(path, MAX_FILE_BYTES)
    except FileReadError as error:
        raise InputError(f"{path}: {error}") from None
    loaded, errors = parse_text(text, str(path))
    if errors:
        raise InputError(str(errors[0]))
    documents = [d.obj for d in loaded if d.obj is not None]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise InputError(f"{path}: every document must be a Kubernetes object")
    return documents


def load_inputs(args: argparse.Namespace, values: InstallValues, crds: bool = True) -> Inputs:
    crd_documents: list[dict[str, Any]] = []
    if crds:
        crds_dir = args.crds_dir or _default_dir("crds")
        if crds_dir is None or not crds_dir.is_dir():
            raise InputError(f"--crds-dir {crds_dir or '(default)'}: no such directory")
        for path in sorted(crds_dir.glob("*.yaml")):
            crd_documents.extend(_documents(path))
    addons: dict[str, list[dict[str, Any]]] = {}
    addons_dir = args.addons_dir or _default_dir("addons")
    if addons_dir is not None and addons_dir.is_dir():
        for path in sorted(addons_dir.glob("*.yaml")):
            if path.stem in values.addons:
                addons[path.stem] = _documents(path)
            else:
                addons[path.stem] = []  # known, not rendered: named in errors
    return Inputs(crd_documents, addons)
