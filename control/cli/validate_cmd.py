"""`mizzen validate -f PATH|-`: validate mesh resources offline, as the webhook would.

One line per document: `<file>:<index> <Kind>/<name>: ok`, or one line per error with its field
path (warnings likewise). Documents of other kinds are skipped with a note. Exit 0 when every mesh
document is valid, 1 when any is invalid (a YAML syntax error counts), 2 when a path cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from control.api import is_mesh_group, validate_resource
from control.api.kinds import UNSERVED_KINDS
from control.config.files import FileReadError, read_text
from control.config.loader import SUFFIXES, LoadError, list_items, parse_text

# The largest file read: as the control plane's config files.
MAX_FILE_BYTES = 8 * 1024 * 1024
_STDIN = "-"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        dest="paths",
        action="append",
        required=True,
        metavar="PATH",
        help="a YAML/JSON file, a directory (its *.yaml, *.yml, *.json files) or - for stdin; "
        "repeatable",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")


@dataclass
class Tally:
    """What one run saw; decides the exit code."""

    valid: int = 0
    invalid: int = 0
    skipped: int = 0
    unreadable: int = 0

    @property
    def exit_code(self) -> int:
        if self.unreadable:
            return 2
        return 1 if self.invalid else 0


def run(args: argparse.Namespace) -> int:
    tally = Tally()
    for path in args.paths:
        for name, text in _sources(path, tally):
            check_text(text, name, tally, out=sys.stdout, quiet=args.quiet)
    print(
        f"{tally.valid} valid, {tally.invalid} invalid, {tally.skipped} skipped"
        + (f", {tally.unreadable} unreadable" if tally.unreadable else ""),
        file=sys.stderr,
    )
    return tally.exit_code


def _sources(path: str, tally: Tally) -> Iterator[tuple[str, str]]:
    """(display name, text) for each file a -f argument stands for; unreadable ones are counted."""
    if path == _STDIN:
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as error:
            print(f"<stdin>: cannot read: {error}", file=sys.stderr)
            tally.unreadable += 1
            return
        yield "<stdin>", text
        return
    target = Path(path)
    try:
        files = sorted(p for p in target.iterdir() if p.suffix in SUFFIXES and p.is_file()) \
            if target.is_dir() else [target]  # fmt: skip
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}", file=sys.stderr)
        tally.unreadable += 1
        return
    if target.is_dir() and not files:
        print(f"{path}: no *.yaml, *.yml or *.json files", file=sys.stderr)
    for file in files:
        try:
            text = read_text(file, MAX_FILE_BYTES)
        except FileReadError as error:
            print(f"{file}: cannot read: {error}", file=sys.stderr)
            tally.unreadable += 1
            continue
        yield str(file), text


def check_text(text: str, name: str, tally: Tally, *, out: TextIO, quiet: bool = False) -> None:
    """Validate every document of one YAML stream, writing one line per result."""
    documents, errors = parse_text(text, name)
    for index, document in enumerate(documents):
        for label, obj in _objects(f"{name}:{index}", document.obj):
            _check_object(label, obj, tally, out=out, quiet=quiet)
    for error in errors:
        if error.hostile:
            out.write(f"{name}:{error.index} {error.syntax} document refused: {error.problem}\n")
        else:
            out.write(f"{name}:{error.index} {error.syntax} syntax error: {_problem(error)}\n")
        tally.invalid += 1


def _objects(label: str, document: object) -> Iterator[tuple[str, object]]:
    """The objects of one document: itself, or the items of a List."""
    if document is None:
        return
    items = list_items(document)
    if items is None:
        yield label, document
        return
    for item_index, item in enumerate(items):
        yield f"{label}.{item_index}", item


def _check_object(label: str, obj: object, tally: Tally, *, out: TextIO, quiet: bool) -> None:
    if not isinstance(obj, dict):
        out.write(f"{label}: error: a Kubernetes object must be a mapping\n")
        tally.invalid += 1
        return
    title = f"{label} {_printable(obj.get('kind'), '<no kind>')}/{_name(obj)}"
    if not is_mesh_group(obj.get("apiVersion"), obj.get("kind")):
        tally.skipped += 1
        if not quiet:
            unserved = obj.get("kind") in UNSERVED_KINDS
            why = "an Istio kind mizzen does not serve" if unserved else "not a mesh kind"
            out.write(f"{title}: skipped ({why})\n")
        return
    report = validate_resource(obj)
    if report.ok:
        tally.valid += 1
        if not quiet:
            out.write(f"{title}: ok\n")
    else:
        tally.invalid += 1
        for error in report.errors:
            out.write(f"{title}: error: {_printable(str(error), '')}\n")
    for warning in report.warnings:
        out.write(f"{title}: warning: {_printable(warning, '')}\n")


def _name(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return _printable(name, "<unnamed>")


def _printable(value: object, default: str) -> str:
    """User text made safe for one terminal line (no control characters, bounded length)."""
    if not isinstance(value, str) or not value:
        return default
    text = "".join(c if c.isprintable() else "?" for c in value)
    return text if len(text) <= 300 else text[:300] + "…"


def _problem(error: LoadError) -> str:
    return _printable(error.problem, "invalid") + error.where
