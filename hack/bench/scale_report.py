"""The scale benchmark's results: the table per scenario, the baseline ratios (push scoping and
shared translation off / on, same change, same run), the issue's targets and Istio's figure."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

# Istio's published sizing (istio.io, "Performance and Scalability"): istiod uses 1 vCPU and
# 1.5 GB of memory for 1,000 services and 2,000 sidecars (at 1,000 QPS of mesh-wide churn).
ISTIOD_MB = 1536
TARGET_P99_S = 1.0
TARGET_FULL_PUSH_S = 10.0
TARGET_RSS_MB = 1024
# Issue 16's targets for the scoped scenario (a Sidecar per namespace), and without Sidecars.
ISSUE16_PUSH_S = 2.0  # the full push, from the process's readiness to every proxy's ACK
ISSUE16_TOTAL_S = 5.0  # the same with the process's start
ISSUE16_RSS_MB = 300
ISSUE16_RSS_NO_SIDECARS_MB = 1024


@dataclass
class Result:
    scenario: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def _pooled(result: Result, change: str) -> dict[str, float] | None:
    rows = [r for r in result.rows if r["change"] == change]
    if not rows:
        return None
    times = [t for r in rows for t in r["times"]]
    return {
        "p50": percentile(times, 0.5),
        "p99": percentile(times, 0.99),
        "received": sum(r["received"] for r in rows) / len(rows),
        "bytes": sum(r["bytes"] for r in rows) / len(rows),
        "cpu": sum(r["cpu"] for r in rows) / len(rows),
        "leaked": sum(r["leaked"] for r in rows),
    }


def _table(result: Result) -> None:
    header = (f"  {'change':<24} {'recv/see':>10} {'leak':>5} {'miss':>5} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'max ms':>7} {'MB sent':>8} {'types':>5} "
              f"{'CP cpu s':>8} {'cl cpu s':>8}")  # fmt: skip
    print(header)
    for row in result.rows:
        times = row["times"]
        line = (
            f"  {row['change']:<24} {row['received']:>5}/{row['can_see']:<4} {row['leaked']:>5} "
            f"{row['missed']:>5} {_ms(percentile(times, 0.5)):>7} "
            f"{_ms(percentile(times, 0.99)):>7} "
            f"{_ms(max(times, default=math.nan)):>7} {row['bytes'] / 1e6:>8.2f} "
            f"{row['types'] or '-':>5} {row['cpu']:>8.2f} {row.get('client_cpu', math.nan):>8.2f}"
        )
        if "push_ms" in row and row["change"] not in ("initial connect", "restart: full push"):
            line += f"  (push computed in {row['push_ms']:.0f} ms, {row['translations']} transl.)"
        if "startup" in row:
            line += f"  (process ready after {row['startup']:.1f} s)"
        print(line)


def print_report(results: list[Result], proxies: int) -> None:
    print("\ntimes: from the config-file write (or the restart) to each proxy's ACK; p50/p99 over"
          " the proxies that can see the change; recv/see: proxies that received anything / that"
          " can see it; leak: received but cannot see it; miss: can see it, got nothing; types:"
          " c=CDS e=EDS l=LDS r=RDS")  # fmt: skip
    for result in results:
        usage = result.usage
        summary = ""
        if usage:
            summary = (f": control plane peak RSS {usage.get('peak_rss_mb', math.nan):.0f} MB, "
                       f"CPU {usage.get('cpu_s', math.nan):.1f} s over the scenario "
                       f"(clients {usage.get('client_cpu_s', math.nan):.1f} s)")  # fmt: skip
        print(f"\n[{result.scenario}]{summary}")
        if result.rows:
            _table(result)
        for note in result.notes:
            print(f"  note: {note}")
    by_name = {r.scenario: r for r in results}
    _ratios(by_name)
    _targets(by_name, proxies)
    _issue16(by_name)


def _ratios(by_name: dict[str, Result]) -> None:
    scoped, baseline = by_name.get("sotw"), by_name.get("sotw-baseline")
    if not scoped or not baseline or not baseline.rows:
        return
    print("\nbaseline ratio (scoping and sharing off / on, SotW with Sidecars, same changes):")
    for change in ("VS, one namespace", "VS, shared namespace", "endpoint, one namespace",
                   "restart: full push"):  # fmt: skip
        on, off = _pooled(scoped, change), _pooled(baseline, change)
        if not on or not off:
            continue
        parts = [f"{key} {_ratio(off[key], on[key])}"
                 for key in ("p99", "cpu", "bytes", "received")]  # fmt: skip
        print(f"  {change:<24} " + ", ".join(parts))


def _ratio(off: float, on: float) -> str:
    if on == 0 or math.isnan(on) or math.isnan(off):
        return "n/a"
    return f"{off / on:.1f}x"


def _verdict(ok: bool) -> str:
    return "met " if ok else "MISS"


def _targets(by_name: dict[str, Result], proxies: int) -> None:
    print(f"\ntargets (with Sidecars, {proxies} proxies):")
    for name in ("sotw", "delta"):
        result = by_name.get(name)
        if not result or not result.rows:
            continue
        vs = _pooled(result, "VS, one namespace")
        restart = [r for r in result.rows if r["change"] == "restart: full push"]
        full = max(restart[0]["times"], default=math.nan) if restart else math.nan
        complete = bool(restart) and restart[0]["received"] == proxies
        leaked = sum(r["leaked"] for r in result.rows if r["change"] != "initial connect")
        rss = result.usage.get("peak_rss_mb", math.nan)
        if vs:
            print(f"  {_verdict(vs['p99'] <= TARGET_P99_S)} {name}: p99 one VS change "
                  f"{_ms(vs['p99'])} ms (target <= {TARGET_P99_S * 1000:.0f} ms)")  # fmt: skip
        startup = restart[0].get("startup", math.nan) if restart else math.nan
        print(f"  {_verdict(complete and full <= TARGET_FULL_PUSH_S)} {name}: full push after "
              f"restart {full:.1f} s to {restart[0]['received'] if restart else 0}/{proxies} "
              f"proxies (process start {startup:.1f} s + push {full - startup:.1f} s; "
              f"target <= {TARGET_FULL_PUSH_S:.0f} s)")  # fmt: skip
        print(f"  {_verdict(rss <= TARGET_RSS_MB)} {name}: peak RSS {rss:.0f} MB "
              f"(target <= {TARGET_RSS_MB} MB; istiod: {ISTIOD_MB} MB and 1 vCPU for 1,000 "
              f"services / 2,000 sidecars)")  # fmt: skip
        print(f"  {_verdict(leaked == 0)} {name}: {leaked} pushes reached proxies that cannot "
              f"see the changed service (target 0)")  # fmt: skip


def _issue16(by_name: dict[str, Result]) -> None:
    """Issue 16's targets, with what this machine allows: the simulated proxies share its cores
    with the control plane, so the clients' own CPU in the full push's window divided by the
    cores is a floor under that window's wall time, whatever the server does."""
    scoped = by_name.get("sotw")
    if scoped and scoped.rows:
        restart = [r for r in scoped.rows if r["change"] == "restart: full push"]
        if restart:
            row = restart[0]
            full = max(row["times"], default=math.nan)
            startup = row.get("startup", math.nan)
            cores = os.cpu_count() or 1
            floor = row.get("client_cpu", math.nan) / cores
            print(f"\nissue 16 (sotw, Sidecars, {row['received']}/{row['can_see']} proxies):")
            print(f"  {_verdict(full - startup <= ISSUE16_PUSH_S)} full push {full - startup:.1f} s"
                  f" after the process is ready (target <= {ISSUE16_PUSH_S:.0f} s)")  # fmt: skip
            print(f"  {_verdict(full <= ISSUE16_TOTAL_S)} with the start {full:.1f} s "
                  f"(target <= {ISSUE16_TOTAL_S:.0f} s)")  # fmt: skip
            print(f"       the clients used {row.get('client_cpu', math.nan):.1f} s of CPU in that "
                  f"window, the control plane {row['cpu']:.1f} s, on {cores} cores: no server "
                  f"could end it in under {floor:.1f} s here")  # fmt: skip
        rss = scoped.usage.get("peak_rss_mb", math.nan)
        print(f"  {_verdict(rss <= ISSUE16_RSS_MB)} peak RSS {rss:.0f} MB with Sidecars "
              f"(target <= {ISSUE16_RSS_MB} MB)")  # fmt: skip
    flat = by_name.get("sotw-nosidecar")
    if flat and flat.usage:
        rss = flat.usage.get("peak_rss_mb", math.nan)
        print(f"  {_verdict(rss <= ISSUE16_RSS_NO_SIDECARS_MB)} peak RSS {rss:.0f} MB without "
              f"Sidecars (target <= {ISSUE16_RSS_NO_SIDECARS_MB} MB)")  # fmt: skip
    _floor(by_name)


def _after_ready(result: Result | None) -> tuple[float, dict[str, Any]] | None:
    """The full push after a restart, from the process's readiness; and its row."""
    rows = [r for r in result.rows if r["change"] == "restart: full push"] if result else []
    if not rows:
        return None
    row = rows[0]
    return max(row["times"], default=math.nan) - row.get("startup", math.nan), row


def _floor(by_name: dict[str, Result]) -> None:
    """The same push from a bare gRPC server with mizzen's bytes (`scale_floor.py`): what any
    Python gRPC server costs here with these clients, and mizzen's push over it."""
    floor = _after_ready(by_name.get("sotw-floor"))
    if floor is None:
        return
    seconds, row = floor
    cpu = row.get("cpu_after_ready", math.nan)
    clients = row.get("client_cpu", math.nan)
    print(f"  floor: a bare grpc.aio server sending mizzen's bytes, {row['received']}/"
          f"{row['can_see']} proxies: full push {seconds:.1f} s after it is ready, its CPU "
          f"after ready {cpu:.1f} s, the clients' {clients:.1f} s")  # fmt: skip
    mizzen = _after_ready(by_name.get("sotw"))
    if mizzen is not None and seconds > 0 and cpu > 0:
        push, own = mizzen
        own_cpu = own.get("cpu_after_ready", math.nan)
        print(f"  mizzen / floor: full push after ready x{push / seconds:.2f}, server CPU after "
              f"ready x{own_cpu / cpu:.2f} ({own_cpu:.1f} s / {cpu:.1f} s)")  # fmt: skip
