"""Policy translation, one checkout against another, round by round: two worker processes (each
importing its own checkout's code, with the interpreter given), asked in turn for one
translation of the same 1,000 policies (`bench_policy`'s generator), so both see the same
moments of a shared machine. Per GC mode (CPython's defaults, the process's policy, off): cold
listener (memos cleared, untimed), warm listener; medians, p99s and the ratio after/before.
The two checkouts' listener bytes are compared first: a speed-up must not change the output.

    .venv/bin/python hack/bench/ab_policy.py BEFORE_DIR AFTER_DIR [--rounds 20]

A worker is this file run as `--worker` from its checkout (it loads that checkout's
`hack/bench/bench_policy.py`); the workers' stdin/stdout carry one command or result a line.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

_MODES: Final = ("default", "policy", "off")
_KINDS: Final = ("cold", "warm")


def _worker(count: int) -> None:
    from control.plane.model.build import build_state
    from control.plane.model.state import Document

    spec = importlib.util.spec_from_file_location(
        "bench_policy", Path.cwd() / "hack" / "bench" / "bench_policy.py"
    )  # this checkout's (the worker runs in it)
    assert spec is not None
    assert spec.loader is not None
    bench: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    docs = [Document(str(i), d) for i, d in enumerate(bench._bench_docs(count))]
    modes = {"default": bench._cpython_gc, "policy": bench._process_gc, "off": bench._no_gc}
    state = build_state(docs)
    kept: list[object] = []
    for line in sys.stdin:
        command = line.split()
        if command[0] == "hash":
            bench._forget()
            found = bench._listener_bytes(bench._inbound(state))
            print(hashlib.sha256(found).hexdigest(), bench.__file__, flush=True)
        elif command[0] == "mode":
            modes[command[1]]()
            kept.clear()
            state = build_state(docs)  # as a process lives: the mode set before the state
            print("ok", flush=True)
        else:
            if command[0] == "cold":
                bench._forget()
            kept.clear()
            started = time.perf_counter()
            kept.append(bench._inbound(state))
            print(f"{(time.perf_counter() - started) * 1000:.3f}", flush=True)


class _Worker:
    def __init__(self, checkout: Path, count: int) -> None:
        python = checkout / ".venv" / "bin" / "python"
        self.process = subprocess.Popen(
            [str(python if python.exists() else sys.executable), str(Path(__file__).resolve()),
             "--worker", "--policies", str(count)],
            cwd=checkout, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(checkout)},
        )  # fmt: skip

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            raise RuntimeError(f"worker ended on {command!r}")
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, nargs="?")
    parser.add_argument("after", type=Path, nargs="?")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--worker", action="store_true")
    args = parser.parse_args()
    if args.worker:
        _worker(args.policies)
        return
    workers = {
        "before": _Worker(args.before, args.policies),
        "after": _Worker(args.after, args.policies),
    }
    try:
        hashes = {}
        for name, worker in workers.items():
            hashes[name], source = worker.ask("hash").split(maxsplit=1)
            print(f"{name}: {source}")
        same = len(set(hashes.values())) == 1
        print(f"listener bytes: {'identical' if same else 'DIFFERENT'} ({hashes['after'][:16]})")
        samples: dict[tuple[str, str, str], list[float]] = {}
        for mode in _MODES:
            for worker in workers.values():
                worker.ask(f"mode {mode}")
            for kind in _KINDS:
                for round_ in range(args.rounds):
                    order = list(workers.items())
                    for name, worker in order if round_ % 2 else reversed(order):
                        found = float(worker.ask(kind))
                        samples.setdefault((mode, kind, name), []).append(found)
    finally:
        for worker in workers.values():
            worker.close()
    print(f"{args.policies} policies x 3 rules, one workload; ms, {args.rounds} rounds each,")
    print("before and after in turn, round by round (median / p99, after/before of medians):")
    for kind in _KINDS:
        for mode in _MODES:
            before = samples[(mode, kind, "before")]
            after = samples[(mode, kind, "after")]
            ratio = statistics.median(after) / statistics.median(before)
            print(
                f"  {kind} listener, GC {mode:8} before {statistics.median(before):7.1f} / "
                f"{_p99(before):7.1f}   after {statistics.median(after):7.1f} / "
                f"{_p99(after):7.1f}   x{ratio:.2f}"
            )


if __name__ == "__main__":
    main()
