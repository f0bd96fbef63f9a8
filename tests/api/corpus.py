"""The table of cases in tests/api/cases/*.yaml, loaded once for several test modules.

Each document is one case, named by metadata.name. `test.mizzen.dev/error` marks an invalid case
(a substring of one expected `path: message`); `test.mizzen.dev/warning` a warning a valid case
must raise.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_DIR = Path(__file__).parent / "cases"
ERROR = "test.mizzen.dev/error"
WARNING = "test.mizzen.dev/warning"


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    obj: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        annotations: dict[str, str] = self.obj["metadata"].get("annotations", {})
        return annotations

    @property
    def expected_error(self) -> str | None:
        return self.annotations.get(ERROR)

    @property
    def expected_warning(self) -> str | None:
        return self.annotations.get(WARNING)


@functools.cache
def load_cases() -> tuple[Case, ...]:
    cases = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        for obj in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            cases.append(Case(path.name, obj["metadata"]["name"], obj))
    return tuple(cases)


def valid_cases() -> list[Case]:
    return [case for case in load_cases() if case.expected_error is None]


def invalid_cases() -> list[Case]:
    return [case for case in load_cases() if case.expected_error is not None]
