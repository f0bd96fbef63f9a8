"""Golden files: `testdata/<case>.yaml` → `testdata/<case>.yaml.injected`.

Each input goes through `mizzen inject`'s code path. The golden file holds the `--explain` lines
and warnings as comments, then the injected YAML (or the one-line error). Refresh them with
`MIZZEN_REFRESH_GOLDEN=1 .venv/bin/pytest tests/injector/test_golden.py` and review the diff.

An optional first line `# mizzen: {namespace: ..., namespaceLabels: {...}, config: {...}}` sets
the options of a case. Beyond the text, every case checks that each `--patch` applied to the
input gives the injected output, and that injecting the output again changes nothing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from control.cli import inject_cmd, inject_yaml
from injector import InjectionConfig

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".yaml") for p in TESTDATA.glob("*.yaml"))
# Cases named error_* must fail with a one-line error; the others must succeed.
ERROR_CASES = [case for case in CASES if case.startswith("error_")]
WORKING_CASES = [case for case in CASES if case not in ERROR_CASES]
REFRESH = os.environ.get("MIZZEN_REFRESH_GOLDEN") == "1"


def _options(text: str) -> inject_cmd.Options:
    first = text.splitlines()[0] if text else ""
    if not first.startswith("# mizzen:"):
        return inject_cmd.Options()
    header: dict[str, Any] = yaml.safe_load(first.removeprefix("# mizzen:"))
    labels = header.get("namespaceLabels", inject_cmd.ENABLED_NAMESPACE)
    return inject_cmd.Options(
        namespace=header.get("namespace"),
        namespace_labels=labels,
        config=InjectionConfig.from_mapping(header.get("config")),
    )


def _render(case: str) -> tuple[str, list[Any], list[inject_cmd.Report], inject_cmd.Options]:
    text = (TESTDATA / f"{case}.yaml").read_text()
    options = _options(text)
    try:
        documents, reports = inject_cmd.inject_text(text, f"{case}.yaml", options)
    except inject_cmd.InputError as error:
        return f"# error: {error}\n", [], [], options
    explained = io.StringIO()
    inject_cmd._write_explanations(reports, explained)
    comments = "".join(f"# {line}\n" for line in explained.getvalue().splitlines())
    body = inject_yaml.dump_all(documents)
    return comments + body, documents, reports, options


def _at(document: Any, pointer: str) -> Any:
    return jsonpatch.JsonPointer(pointer).resolve(document) if pointer else document


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    rendered, _, _, _ = _render(case)
    golden = TESTDATA / f"{case}.yaml.injected"
    if REFRESH or not golden.exists():
        golden.write_text(rendered)
        if not REFRESH:
            pytest.fail(f"{golden.name} did not exist: written, review it")
    assert rendered == golden.read_text()


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_input_is_one_line_naming_the_document(case: str) -> None:
    rendered, documents, _, _ = _render(case)
    assert rendered.startswith(f"# error: {case}.yaml: document ")
    assert rendered.count("\n") == 1
    assert documents == []


@pytest.mark.parametrize("case", WORKING_CASES)
def test_patch_applied_to_input_gives_the_output(case: str) -> None:
    text = (TESTDATA / f"{case}.yaml").read_text()
    _, documents, reports, _ = _render(case)
    originals = list(yaml.safe_load_all(text))
    for report in reports:
        if report.result is None:
            continue
        index = int(report.where.split("document ")[1].split()[0].rstrip(",")) - 1
        # Empty documents are dropped from the output.
        position = sum(1 for document in originals[:index] if document is not None)
        original, injected = originals[index], documents[position]
        patched = jsonpatch.apply_patch(_at(original, report.target), report.result.patch)
        assert patched == _at(injected, report.target)
        if not report.result.injected:
            assert report.result.patch == []
            assert _at(injected, report.target) == _at(original, report.target)


@pytest.mark.parametrize("case", WORKING_CASES)
def test_injecting_the_output_again_is_a_fixed_point(case: str) -> None:
    rendered, documents, _, options = _render(case)
    assert not rendered.startswith("# error")
    text = inject_yaml.dump_all(documents)
    again, again_reports = inject_cmd.inject_text(text, case, options)
    assert again == documents
    for report in again_reports:
        if report.result is not None:
            assert report.result.patch == []


def test_there_are_enough_cases() -> None:
    assert len(WORKING_CASES) >= 40
    assert len(ERROR_CASES) >= 15
