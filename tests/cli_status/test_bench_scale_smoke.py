"""The scale benchmark's own code, exercised at a small size (`--quick`: 100 services, 200
proxies in 2 client processes, SotW and Delta): it must run to the end, and its figures must say
what push scoping promises (a change reaches exactly the proxies that can see it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).parents[2] / "hack" / "bench" / "bench_scale.py"


@pytest.mark.slow
def test_quick_scale_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--scenarios", "sotw,delta,sotw-floor",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "targets (with Sidecars, 200 proxies)" in result.stdout
    assert "issue 16 (sotw, Sidecars, 200/200 proxies)" in result.stdout
    scenarios: dict[str, Any] = {r["scenario"]: r for r in json.loads(out.read_text())}
    for name in ("sotw", "delta"):
        scenario = scenarios[name]
        assert not scenario["notes"], scenario["notes"]
        rows = {row["change"]: row for row in scenario["rows"]}
        assert set(rows) == {"initial connect", "VS, one namespace", "VS, shared namespace",
                             "endpoint, one namespace", "restart: full push",
                             "VS, after restart", "endpoint, after restart"}  # fmt: skip
        one_namespace = rows["VS, one namespace"]
        assert (one_namespace["received"], one_namespace["can_see"]) == (20, 20), name
        assert one_namespace["leaked"] == 0
        assert one_namespace["types"] == "r"  # only the route changed
        assert rows["endpoint, one namespace"]["types"] == "e"
        assert rows["endpoint, one namespace"]["leaked"] == 0
        assert rows["VS, shared namespace"]["received"] == 200
        assert rows["restart: full push"]["received"] == 200
        assert rows["restart: full push"]["missed"] == 0
        # the simulated proxies' CPU in the window (the floor under the push on this machine)
        assert rows["restart: full push"]["client_cpu"] > 0
        for after in ("VS, after restart", "endpoint, after restart"):
            assert (rows[after]["received"], rows[after]["leaked"]) == (20, 0), (name, after)
        assert len(one_namespace["times"]) == 20
        assert all(0 < t < 30 for t in one_namespace["times"])
        assert 0 < scenario["usage"]["peak_rss_mb"] < 4000
        assert scenario["usage"]["cpu_s"] > 0
    # the floor: the same clients against a bare gRPC server sending mizzen's bytes
    floor = scenarios["sotw-floor"]
    assert not floor["notes"], floor["notes"]
    rows = {row["change"]: row for row in floor["rows"]}
    assert set(rows) == {"initial connect", "restart: full push"}
    mizzen = {row["change"]: row for row in scenarios["sotw"]["rows"]}
    for change, row in rows.items():
        assert (row["received"], row["missed"], row["types"]) == (200, 0, "celr"), change
        # the same responses (only the nonces differ): within 1% of mizzen's bytes
        assert abs(row["bytes"] / mizzen[change]["bytes"] - 1) < 0.01, change
    assert rows["restart: full push"]["cpu_after_ready"] > 0
    assert "mizzen / floor: full push after ready x" in result.stdout
