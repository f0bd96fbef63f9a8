"""`mizzen inject`: preview sidecar injection of Kubernetes manifests (like `istioctl kube-inject`).

Every workload's pod template goes through the same `injector.inject` the webhook calls. Input is
multi-document YAML or JSON; output is YAML (or, with `--patch`, JSON patches; with `--explain`,
the decisions). Bad input is one line naming the document and the field, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from control.cli import inject_yaml
from control.cli.settings_files import SettingsFileError, load_injection_config
from control.config.files import FileReadError, read_bytes
from control.config.loader import list_items, parse_text
from injector import (
    InjectionConfig,
    InjectionContext,
    InjectionError,
    InjectionResult,
    controller_workload_name,
    inject,
)

# The path from a document to its pod template, by kind.
TEMPLATE_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
ENABLED_NAMESPACE: Final = {"istio-injection": "enabled"}
# The largest manifest read (a 3 MiB pod is a test case; injected it is some 7 times bigger).
MAX_INPUT_BYTES: Final = 32 * 1024 * 1024


class UsageError(Exception):
    """A bad flag value (exit 2)."""


class InputError(Exception):
    """Bad input: one line for the user (exit 1)."""


@dataclass(frozen=True)
class Options:
    namespace: str | None = None
    with_patch: bool = True
    namespace_labels: Mapping[str, str] = field(default_factory=lambda: dict(ENABLED_NAMESPACE))
    config: InjectionConfig = field(default_factory=InjectionConfig)


@dataclass(frozen=True)
class Report:
    """One workload's outcome, for --patch and --explain."""

    where: str
    target: str
    result: InjectionResult | None  # None: not a workload


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Preview sidecar injection: injects the pod template of every Pod, Deployment, "
        "StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob (also inside "
        "a v1 List) as the webhook would, and prints YAML. Other kinds pass through unchanged."
    )
    parser.add_argument("-f", "--filename", required=True, metavar="FILE", help="manifest, or -")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--patch",
        action="store_true",
        help="print, per workload, the RFC 6902 JSON patch of its pod template instead: "
        "`target` is the JSON pointer of the pod template in the document (empty for a Pod); "
        "the patch applies to that pod template",
    )
    mode.add_argument(
        "--explain",
        action="store_true",
        help="print, per workload, whether it is injected, the rule that decided and what each "
        "annotation changed",
    )
    parser.add_argument(
        "--namespace", metavar="NS", help="namespace of documents that name none (default: default)"
    )
    parser.add_argument(
        "--namespace-labels",
        metavar="K=V,...",
        help="the namespace's labels (default: istio-injection=enabled; '' for none)",
    )
    parser.add_argument("--config", metavar="FILE", help="injection settings (YAML, camelCase)")


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--namespace-labels: {item!r} is not key=value")
        labels[key.strip()] = value.strip()
    return labels


def _read(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
            if len(data) > MAX_INPUT_BYTES:
                raise InputError(f"<stdin>: more than {MAX_INPUT_BYTES} bytes")
        else:
            data = read_bytes(Path(path), MAX_INPUT_BYTES)
    except FileReadError as error:
        raise InputError(f"{path}: {error}") from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{'<stdin>' if path == '-' else path}: not UTF-8 text") from None


def _documents(text: str, source: str) -> list[object]:
    """The documents of the input, by the shared loader's rules (its guard refuses alias bombs
    and nesting that would explode or overflow once written out)."""
    documents, errors = parse_text(text, source)
    if errors:
        error = errors[0]
        raise InputError(f"{source}: document {error.index + 1}: {error.describe()}")
    return [document.obj for document in documents]


def _describe(document: Mapping[str, Any]) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) and isinstance(metadata, Mapping):
        name = metadata.get("generateName")
    return f"{document.get('kind')}/{name if isinstance(name, str) else '?'}"


def _replace_at(document: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    """A copy of `document` with `value` at `path` (copies along the path only)."""
    if not path:
        return dict(value)
    child = document.get(path[0])
    return {
        **document,
        path[0]: _replace_at(child if isinstance(child, Mapping) else {}, path[1:], value),
    }


def _inject_workload(
    document: Mapping[str, Any], where: str, options: Options, pointer: str
) -> tuple[Any, list[Report]]:
    kind = document.get("kind")
    list_of = list_items(document)
    if list_of is not None:
        items, reports = [], []
        for position, item in enumerate(list_of):
            new_item, found = _inject_any(
                item, f"{where}, item {position + 1}", options, f"{pointer}/items/{position}"
            )
            items.append(new_item)
            reports += found
        return {**document, "items": items}, reports
    if not isinstance(kind, str) or kind not in TEMPLATE_PATHS:
        return document, [Report(f"{where} ({_describe(document)})", pointer, None)]
    where = f"{where} ({_describe(document)})"
    path = TEMPLATE_PATHS[kind]
    template: Any = document
    for depth, key in enumerate(path):
        template = template.get(key) if isinstance(template, Mapping) else None
        if not isinstance(template, Mapping):
            raise InjectionError(
                ".".join(path[: depth + 1]), "missing: a workload needs a pod template"
            )
    metadata = document.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    namespace = metadata.get("namespace") or options.namespace or "default"
    if not isinstance(namespace, str):
        raise InjectionError("metadata.namespace", "must be a string")
    name = metadata.get("name")
    workload = (
        controller_workload_name(kind, name, template)
        if kind != "Pod" and isinstance(name, str) else None
    )  # fmt: skip
    context = InjectionContext(
        namespace=namespace, namespace_labels=options.namespace_labels, workload_name=workload
    )
    try:
        result = inject(template, context, options.config, with_patch=options.with_patch)
    except InjectionError as error:
        raise InputError(f"{where}: {error.field}: {error.message}") from None
    target = pointer + "".join(f"/{key}" for key in path)
    new_document = _replace_at(document, path, result.pod) if result.injected else document
    return new_document, [Report(where, target, result)]


def _inject_any(
    document: object, where: str, options: Options, pointer: str
) -> tuple[Any, list[Report]]:
    if not isinstance(document, Mapping):
        return document, []
    try:
        return _inject_workload(document, where, options, pointer)
    except InjectionError as error:
        raise InputError(
            f"{where} ({_describe(document)}): {error.field}: {error.message}"
        ) from None


def inject_text(text: str, source: str, options: Options) -> tuple[list[Any], list[Report]]:
    """Every document of a manifest, injected; raises `InputError`."""
    documents, reports = [], []
    for index, document in enumerate(_documents(text, source), start=1):
        if document is None:
            continue
        new_document, found = _inject_any(document, f"{source}: document {index}", options, "")
        documents.append(new_document)
        reports += found
    return documents, reports


def _write_patches(reports: list[Report], out: TextIO) -> None:
    entries = [
        {
            "workload": report.where,
            "target": report.target,
            "injected": report.result.injected,
            "skipReason": None if report.result.injected else str(report.result.skip_reason),
            "patch": report.result.patch,
        }
        for report in reports
        if report.result is not None
    ]
    out.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")


def _write_explanations(reports: list[Report], out: TextIO) -> None:
    for report in reports:
        if report.result is None:
            out.write(f"{report.where}: not a workload, passed through unchanged\n")
            continue
        out.write(f"{report.where}: {'injected' if report.result.injected else 'not injected'}\n")
        if report.result.skip_reason is not None:
            out.write(f"  skip reason: {report.result.skip_reason.text}\n")
        lines = [f"  {line}\n" for line in report.result.explanation]
        lines += [f"  warning: {warning}\n" for warning in report.result.warnings]
        out.write("".join(lines))


def _render(text: str, source: str, options: Options, mode: str) -> tuple[str, list[str]]:
    """The output text and the warnings; raises `InputError`."""
    documents, reports = inject_text(text, source, options)
    warnings = [
        f"{report.where}: {warning}"
        for report in reports
        for warning in (report.result.warnings if report.result and mode != "explain" else ())
    ]
    out = io.StringIO()
    if mode == "patch":
        _write_patches(reports, out)
    elif mode == "explain":
        _write_explanations(reports, out)
    elif documents:
        out.write(inject_yaml.dump_all(documents))
    return out.getvalue(), warnings


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _process(text: str, source: str, options: Options, out: TextIO, mode: str) -> int:
    options = dataclasses.replace(options, with_patch=mode == "patch")
    try:
        output, warnings = _render(text, source, options, mode)
    except InputError as error:
        sys.stderr.write(f"mizzen inject: {_one_line(str(error))}\n")
        return 1
    except RecursionError:
        sys.stderr.write(f"mizzen inject: {source}: a document is nested too deeply\n")
        return 1
    except Exception as error:  # a bug: still one line, never a traceback
        message = _one_line(f"{type(error).__name__}: {error}")
        sys.stderr.write(f"mizzen inject: internal error: {message}\n")
        return 70
    for warning in warnings:
        sys.stderr.write(f"mizzen inject: warning: {warning}\n")
    out.write(output)
    return 0


def preview(text: str, *, source: str, out: TextIO, patch: bool = False) -> int:
    """`mizzen inject` with default settings on `text` (used by `mizzen demo`)."""
    return _process(text, source, Options(), out, "patch" if patch else "yaml")


def run(args: argparse.Namespace) -> int:
    try:
        labels = (
            dict(ENABLED_NAMESPACE)
            if args.namespace_labels is None
            else _parse_labels(args.namespace_labels)
        )
        config = load_injection_config(Path(args.config) if args.config else None)
        text = _read(args.filename)
    except UsageError as error:
        sys.stderr.write(f"mizzen inject: {error}\n")
        return 2
    except (InputError, SettingsFileError) as error:
        sys.stderr.write(f"mizzen inject: {error}\n")
        return 1
    options = Options(namespace=args.namespace, namespace_labels=labels, config=config)
    mode = "patch" if args.patch else "explain" if args.explain else "yaml"
    source = "<stdin>" if args.filename == "-" else args.filename
    return _process(text, source, options, sys.stdout, mode)
