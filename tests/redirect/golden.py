"""The golden cases: `testdata/<case>.args` holds `mizzen init` flags (one per line), next to the
rulesets they must produce, `<case>.ipv4.rules` and `<case>.ipv6.rules`. Refresh with
MIZZEN_REFRESH_GOLDEN=1 and review the diff."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from control.cli import init_cmd
from control.redirect.rules import IpFamily
from injector.redirect.spec import RedirectSpec

TESTDATA = Path(__file__).with_name("testdata")
CASES = sorted(TESTDATA.glob("*.args"))
REFRESH = os.environ.get("MIZZEN_REFRESH_GOLDEN") == "1"


def parse_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    init_cmd.configure(parser)
    return parser.parse_args(argv)


def case_spec(case: Path) -> RedirectSpec:
    argv = [line for line in case.read_text().splitlines() if line.strip()]
    return init_cmd.parse_spec(parse_flags(argv))


def golden_path(case: Path, family: IpFamily) -> Path:
    return case.with_suffix(f".{family.value}.rules")


def check_golden(path: Path, actual: str) -> None:
    if REFRESH:
        path.write_text(actual)
    assert path.exists(), f"{path.name} missing: run with MIZZEN_REFRESH_GOLDEN=1"
    assert actual == path.read_text(), f"{path.name} differs (MIZZEN_REFRESH_GOLDEN=1 to refresh)"
