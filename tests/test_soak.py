"""A short run of the soak (`hack/soak.py`: `mizzen control` with the CA and the webhook, under
hostile and normal load at once). The full ten minutes are run by hand; here every attack runs at
least once and every check must hold, so the harness itself is known to work and to judge."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hack import soak

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_a_short_soak_holds_every_bound(tmp_path: Path) -> None:
    summary_file = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "soak.py"), "--seconds", "40", "--proxies", "5",
         "--json", str(summary_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    assert summary["failures"] == []
    assert set(summary["attacks"]) == soak.ATTACKS
    assert summary["reviews_ok"] > 100
    assert summary["convergence_checks"] >= 2
    assert summary["clusters_wrong"] == 0


def test_the_soak_judges_a_wrong_answer() -> None:
    """The judge is not a rubber stamp: a review answered without the sidecar is wrong."""
    tally = soak.Tally()
    answer = {"response": {"uid": "soak-1", "allowed": True, "patch": ""}}
    soak._judge(200, json.dumps(answer).encode(), 1, tally)
    soak._judge(503, b"overloaded", 2, tally)
    assert (tally.reviews_ok, tally.reviews_wrong, tally.reviews_shed) == (0, 1, 1)
    assert tally.failures(1024, 4096)
