"""Translation golden files: model -> Envoy resources as JSON, and each golden accepted by the
real Envoy (`envoy --mode validate` on a static bootstrap made of it).

Refresh after an intended change with `MIZZEN_REFRESH_GOLDEN=1 pytest tests/control`, then read
the diff of the golden files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from control.plane.xds.translate import consistency
from control.plane.xds.translate.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE, from_dicts
from tests.control.envoy_static import validate
from tests.control.translate_cases import CASES, read_golden, translate_case, write_golden

REFRESH = os.environ.get("MIZZEN_REFRESH_GOLDEN") == "1"


@pytest.mark.parametrize("case", CASES)
def test_translation_matches_golden(case: str) -> None:
    resources = translate_case(case)
    if REFRESH:
        write_golden(case, resources)
    assert resources == read_golden(case), f"refresh with MIZZEN_REFRESH_GOLDEN=1 ({case})"


@pytest.mark.parametrize("case", CASES)
def test_golden_is_consistent(case: str) -> None:
    golden = read_golden(case)
    parsed = from_dicts(
        {
            CLUSTER: golden["cds"],
            ENDPOINT: golden["eds"],
            LISTENER: golden["lds"],
            ROUTE: golden["rds"],
        }
    )
    assert consistency.problems(parsed) == []


@pytest.mark.envoy
@pytest.mark.parametrize("case", CASES)
def test_golden_loads_in_envoy(case: str, tmp_path: Path) -> None:
    result = validate(read_golden(case), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
