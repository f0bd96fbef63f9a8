"""Benchmark: mesh objects validated per second, on one core, against floors measured in the same
run (YAML load of the same documents; pydantic parse of the specs without semantic checks).

    .venv/bin/python hack/bench/bench_validate.py [--documents 10000] [--repeats 5]

The corpus is the table of test cases (tests/api/cases: bookinfo shapes, every field, ~75%
invalid), cycled to N documents with distinct names, so valid and invalid objects of every kind
are mixed as a cluster's apply stream would be.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from control.api import validate_resource  # noqa: E402 - after the path set-up above
from control.api.registry import SPEC_MODELS  # noqa: E402

CASES = ROOT / "tests" / "api" / "cases"


def corpus(size: int) -> list[dict[str, Any]]:
    base: list[dict[str, Any]] = []
    for path in sorted(CASES.glob("*.yaml")):
        base += list(yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))
    documents = []
    for index in range(size):
        document = copy.deepcopy(base[index % len(base)])
        document["metadata"]["name"] = f"{document['metadata']['name']}-{index}"
        documents.append(document)
    return documents


def _pydantic_only(document: dict[str, Any]) -> bool:
    """The typed parse alone: what any pydantic-based validation pays at least."""
    with contextlib.suppress(ValueError):
        SPEC_MODELS[document["kind"]].model_validate(document.get("spec") or {})
        return True
    return False


def _throughput(action: Callable[[], object], count: int, repeats: int) -> list[float]:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        rates.append(count / (time.perf_counter() - start))
    return rates


def _latencies_us(documents: list[dict[str, Any]]) -> list[float]:
    found = []
    for document in documents:
        start = time.perf_counter_ns()
        validate_resource(document)
        found.append((time.perf_counter_ns() - start) / 1000)
    return sorted(found)


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> int:
    parser = argparse.ArgumentParser(description="mesh API validation throughput")
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    documents = corpus(args.documents)
    text = yaml.safe_dump_all(documents)
    count = len(documents)
    valid = sum(validate_resource(d).ok for d in documents)

    yaml_rates = _throughput(
        lambda: list(yaml.load_all(text, Loader=yaml.CSafeLoader)), count, args.repeats
    )
    parse_rates = _throughput(lambda: [_pydantic_only(d) for d in documents], count, args.repeats)
    full_rates = _throughput(lambda: [validate_resource(d) for d in documents], count, args.repeats)
    valid_only = [d for d in documents if validate_resource(d).ok]
    valid_rates = _throughput(
        lambda: [validate_resource(d) for d in valid_only], len(valid_only), args.repeats
    )
    latencies = _latencies_us(documents)

    full = statistics.median(full_rates)
    print(f"corpus: {count} documents ({valid} valid, {count - valid} invalid), one core")
    for label, rates in (
        ("floor: YAML load (CSafeLoader)", yaml_rates),
        ("floor: pydantic parse only", parse_rates),
        ("validate_resource (full)", full_rates),
        ("validate_resource, valid docs only", valid_rates),
    ):
        print(f"{label:34} median {statistics.median(rates):10,.0f} obj/s  "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f})")  # fmt: skip
    print(f"validate_resource latency: median {statistics.median(latencies):.1f} us, "
          f"p99 {_p99(latencies):.1f} us, max {latencies[-1]:.1f} us")  # fmt: skip
    print(f"ratio full / pydantic-only time: {statistics.median(parse_rates) / full:.2f}x; "
          f"full / YAML-load time: {statistics.median(yaml_rates) / full:.2f}x")  # fmt: skip
    target = 5_000
    print(f"target >= {target:,} obj/s: {'met' if full >= target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
