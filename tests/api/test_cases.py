"""The table-driven cases: each valid object passes (with its expected warning, if any), each
invalid one fails with the expected `path: message`."""

from __future__ import annotations

import pytest

from control.api import inspect_resource, validate_resource
from tests.api.corpus import Case, invalid_cases, load_cases, valid_cases


def test_the_table_is_large_and_names_are_unique() -> None:
    names = [(case.obj["kind"], case.name) for case in load_cases()]
    assert len(names) >= 120
    assert len(set(names)) == len(names)
    assert len(valid_cases()) >= 40
    assert len(invalid_cases()) >= 120


@pytest.mark.parametrize("case", valid_cases(), ids=lambda c: f"{c.file}:{c.name}")
def test_valid_case(case: Case) -> None:
    report = validate_resource(case.obj)
    assert report.ok, [str(error) for error in report.errors]
    if case.expected_warning:
        assert any(case.expected_warning in warning for warning in report.warnings), report.warnings
    else:
        assert not report.warnings
    _, resource = inspect_resource(case.obj)
    assert resource is not None
    assert resource.kind == case.obj["kind"]
    assert resource.name == case.name


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c.name)
def test_invalid_case(case: Case) -> None:
    expected = case.expected_error
    assert expected is not None
    report = validate_resource(case.obj)
    assert not report.ok
    messages = [str(error) for error in report.errors]
    assert any(expected in message for message in messages), messages
    assert inspect_resource(case.obj)[1] is None
