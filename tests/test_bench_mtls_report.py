"""The mTLS benchmark's report (pure): the target's ratio per round, beside the ratio of the
medians, so one run shows how far its figure can move on a noisy machine."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script, imported as it runs: its own directory on the path, for its siblings."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "hack" / "bench"))
    return importlib.import_module("bench_mtls")


def _round(bench: ModuleType, p50: float, p99: float) -> Any:
    return bench.Round(p50=p50, p90=p50, p99=p99, rps=900.0, requests=2700,
                       envoy_cpu_us=300.0, mesh_cpu_ms_per_s=0.0)  # fmt: skip


def test_each_rounds_ratio_is_over_its_own_direct_run(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # direct moves between rounds; each round's ratio subtracts its own direct run
    direct = [_round(bench, 0.2, 1.0), _round(bench, 0.4, 1.0), _round(bench, 0.3, 1.0)]
    hand = [
        _round(bench, 1.2, 2.0),
        _round(bench, 1.4, 2.0),
        _round(bench, 1.3, 0.5),
    ]  # +1.0 ms, p99 once < direct
    mtls = [
        _round(bench, 1.3, 3.0),
        _round(bench, 1.6, 2.5),
        _round(bench, 1.4, 3.0),
    ]  # x1.1, x1.2, x1.1 at p50
    paced = {"direct": direct, "plaintext": mtls, "mtls": mtls, "hand-written": hand,
             "hand-featured": hand}  # fmt: skip
    assert bench._round_ratios(paced, "mtls", "hand-written", "p50") == pytest.approx(
        [1.1, 1.2, 1.1]
    )
    # the round whose hand-written p99 fell under direct's is left out, not a negative ratio
    assert bench._round_ratios(paced, "mtls", "hand-written", "p99") == pytest.approx([2.0, 1.5])
    busy = {name: _round(bench, 1.0, 2.0) for name in paced}
    bench.report(paced, busy)
    out = capsys.readouterr().out
    assert "p50 median x1.10, range x1.10-x1.20" in out
    assert "p99 median x1.75, range x1.50-x2.00" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["target_per_round"]["p50"] == pytest.approx([1.1, 1.2, 1.1])
