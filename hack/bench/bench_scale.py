"""The control plane at scale: Istio's load-test shape on this machine.

1,000 services in 50 namespaces (20 each; one of them `shared`), 2 ports and 2 endpoints per
service, 2,000 proxies (40 per namespace) simulated by ADS clients in 4 other processes (each
ACKs every response and records receive times and bytes). The control plane is a separate
process (`mizzen control --config-dir`), measured through /proc. Scenarios, each on a fresh
control plane:

    sotw            State of the World, a Sidecar per namespace (egress ./* and shared/*)
    sotw-baseline   the same with push scoping and shared translation off (baseline.py)
    delta           Delta xDS, Sidecars
    sotw-nosidecar  State of the World without Sidecars: every proxy sees every service
    sotw-floor      the `sotw` mesh and clients against a bare grpc.aio server answering with
                    mizzen's bytes, made before it listens (scale_floor.py): the connect and
                    the full push after a restart only, the floor under mizzen's push

Each measures: a VirtualService change in one namespace and in the shared one, an endpoint
change (a pod turns not ready), each from the file write to the last affected proxy's ACK
(p50/p99 over proxies), how many proxies received it against how many can see the service,
bytes sent; a full push after a control-plane restart (all proxies reconnect and ACK), then a
VirtualService and an endpoint change again (the reconnected subscriptions work); peak RSS
(VmHWM) and CPU seconds. The baseline gives the ratio (scoping off / on) for the same change.
Every convergence figure includes the file source's detection (100 ms polling) and the 100 ms
debounce: a floor of ~0.1-0.2 s that a Kubernetes watch would not have. The two costly
comparisons (baseline, no Sidecars) measure one change of each one-namespace kind; at full size
the baseline alone takes minutes: without scoping each change re-translates all 2,000 proxies.

    .venv/bin/python hack/bench/bench_scale.py [--quick] [--services N --proxies N --namespaces N]
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scale_mesh import SHARED, Mesh, Shape
from scale_procs import BenchError, ControlProcess, Fleet
from scale_report import Result, print_report

SCENARIOS = {
    "sotw": ("sotw", True, True),  # mode, sidecars, scoping
    "sotw-floor": ("sotw", True, True),
    "sotw-baseline": ("sotw", True, False),
    "delta": ("delta", True, True),
    "sotw-nosidecar": ("sotw", False, True),
    "delta-nosidecar": ("delta", False, True),
}


@dataclass
class Options:
    services: int
    namespaces: int
    proxies: int
    workers: int
    changes: int
    settle: float
    timeout: float
    max_rss_mb: float
    workdir: Path


class Scenario:
    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.options = options
        mode, sidecars, scoping = SCENARIOS[name]
        self.mode = mode
        self.baseline = not scoping
        self.floor = name.endswith("-floor")
        shape = Shape(options.services, options.namespaces, options.proxies, 2, sidecars)
        self.root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=options.workdir))
        self.mesh = Mesh.generate(shape, self.root / "config")
        self.result = Result(name)
        self.control: ControlProcess | None = None
        self.fleet: Fleet | None = None
        self.peak_mb = 0.0
        self.cpu_done = 0.0  # CPU seconds of control-plane processes already stopped

    # plumbing -----------------------------------------------------------------------------

    def _start_control(self, port: int) -> ControlProcess:
        extra: list[str] = []
        script = "baseline.py" if self.baseline else None
        if self.floor:
            specs = self.root / "proxies.json"
            specs.write_text(json.dumps([p.spec() for p in self.mesh.proxies]))
            extra, script = ["--proxies", str(specs)], "scale_floor.py"
        control = ControlProcess(
            self.root / "config", port, extra, self.root / "control.log", script=script
        )
        control.wait_ready(self.options.timeout)
        self.control = control
        return control

    def _guard(self) -> None:
        assert self.control is not None
        usage = self.control.usage()
        self.peak_mb = max(self.peak_mb, usage["hwm_mb"])
        if usage["rss_mb"] > self.options.max_rss_mb:
            raise BenchError(f"control plane RSS {usage['rss_mb']:.0f} MB exceeds --max-rss-mb")

    def _wait(self, done: Any, what: str, started: float) -> bool:
        """Poll until `done()` holds and nothing arrived for `settle` seconds."""
        assert self.fleet is not None
        while True:
            time.sleep(0.2)
            self._guard()
            finished, last = done()
            now = time.monotonic()
            if finished and now - max(last, started) >= self.options.settle:
                return True
            if now - started > self.options.timeout:
                self.result.notes.append(
                    f"{what}: not converged after {self.options.timeout:.0f} s"
                )
                return False

    def _row(
        self, what: str, started: float, can_see: set[str], cpu_before: float,
        clients_before: float,
    ) -> None:  # fmt: skip
        """`clients_before`: the simulated proxies' CPU seconds when the window opened (their
        share of the 2 cores bounds how fast any server could finish the window)."""
        assert self.fleet is not None
        assert self.control is not None
        window = self.fleet.window(started)
        received = set(window)
        times = [window[k][3] - started for k in received & can_see]
        self.result.rows.append({
            "change": what,
            "received": len(received), "can_see": len(can_see),
            "leaked": len(received - can_see), "missed": len(can_see - received),
            "times": sorted(times),
            "bytes": sum(v[1] for v in window.values()),
            "types": "".join(sorted({t for v in window.values() for t in v[4]})),
            "cpu": self.control.usage()["cpu"] - cpu_before,
            "client_cpu": self.fleet.cpu() - clients_before,
        })  # fmt: skip
        push = self.control.last_push()
        if "millis" in push:
            self.result.rows[-1]["push_ms"] = float(push["millis"])
            self.result.rows[-1]["translations"] = push.get("translations")

    # phases -------------------------------------------------------------------------------

    def connect(self) -> None:
        control = self._start_control(0)
        specs = [p.spec() for p in self.mesh.proxies]
        cpu_before = control.usage()["cpu"]
        started = time.monotonic()
        target = f"127.0.0.1:{control.xds_port}"
        self.fleet = Fleet(target, self.mode, specs, self.options.workers, self.root / "ads.log")
        total = len(specs)
        if not self._wait(lambda: self._all_ready(total), "initial connect", started):
            raise BenchError(f"initial connect incomplete: {self.fleet.status()}")
        # the workers' start (imports) counts too: 4 of them, ~0.5 s of CPU each
        self._row("initial connect", started, {p.key for p in self.mesh.proxies}, cpu_before, 0.0)

    def _all_ready(self, total: int) -> tuple[bool, float]:
        assert self.fleet is not None
        status = self.fleet.status()
        if status["unimplemented"]:
            raise BenchError("the control plane answered UNIMPLEMENTED (no Delta xDS)")
        return status["ready"] >= total, status["last"]

    def change(self, what: str, namespace: str, action: Any) -> None:
        assert self.fleet is not None
        assert self.control is not None
        can_see = self.mesh.can_see(namespace)
        cpu_before = self.control.usage()["cpu"]
        clients_before = self.fleet.cpu()
        started = time.monotonic()
        self.fleet.progress(started, can_see)  # registers the expected proxies
        action()

        def done() -> tuple[bool, float]:
            assert self.fleet is not None
            progress = self.fleet.progress(started)
            return progress["expected"] >= len(can_see), progress["last"]

        self._wait(done, what, started)
        self._row(what, started, can_see, cpu_before, clients_before)

    def restart(self) -> None:
        assert self.control is not None
        assert self.fleet is not None
        port = self.control.xds_port
        self._guard()
        self.cpu_done += self.control.usage()["cpu"]
        self.control.stop()
        deadline = time.monotonic() + 30
        while self.fleet.status()["connected"] and time.monotonic() < deadline:
            time.sleep(0.1)
        clients_before = self.fleet.cpu()
        started = time.monotonic()
        control = self._start_control(port)
        ready_after = control.ready_at - started
        cpu_ready = control.usage()["cpu"]  # its start: imports, the config (the floor's bytes)
        total = len(self.mesh.proxies)
        self._wait(lambda: self._all_ready(total), "full push after restart", started)
        everyone = {p.key for p in self.mesh.proxies}
        self._row("restart: full push", started, everyone, 0.0, clients_before)
        self.result.rows[-1]["startup"] = ready_after
        self.result.rows[-1]["cpu_after_ready"] = self.result.rows[-1]["cpu"] - cpu_ready

    def run(self) -> Result:
        """Connect, the changes, the restart. The costly comparisons (the baseline, there for
        its ratio; the mesh without Sidecars) measure one change of each one-namespace kind
        (the baseline: no restart), so that the whole run stays within minutes."""
        regular = [ns for ns in self.mesh.namespaces if ns != SHARED]
        baseline = self.baseline
        light = baseline or not self.mesh.shape.sidecars
        changes = 1 if light else self.options.changes
        try:
            self.connect()
            if self.floor:  # it serves what it made at its start: no change reaches it
                self.restart()
                return self.result
            for index in range(changes):
                namespace = regular[index % len(regular)]
                service = self.mesh.services[namespace][0]
                action = functools.partial(self.mesh.change_virtual_service, namespace, service)
                self.change("VS, one namespace", namespace, action)
            shared_service = self.mesh.services[SHARED][0]
            action = functools.partial(self.mesh.change_virtual_service, SHARED, shared_service)
            if not light:
                self.change("VS, shared namespace", SHARED, action)
            for index in range(changes):
                namespace = regular[(index + 1) % len(regular)]
                pod = f"{self.mesh.services[namespace][0]}-0"
                action = functools.partial(self.mesh.flip_readiness, namespace, pod)
                self.change("endpoint, one namespace", namespace, action)
            if not baseline:
                self.restart()
            if not light:  # the reconnected streams' subscriptions still get their updates
                namespace = regular[-1]
                service = self.mesh.services[namespace][-1]
                action = functools.partial(self.mesh.change_virtual_service, namespace, service)
                self.change("VS, after restart", namespace, action)
                pod = f"{service}-0"
                action = functools.partial(self.mesh.flip_readiness, namespace, pod)
                self.change("endpoint, after restart", namespace, action)
        except BenchError as error:
            self.result.notes.append(f"stopped: {error}")
        finally:
            if self.control is not None and self.control.process.poll() is None:
                usage = self.control.usage()
                self.peak_mb = max(self.peak_mb, usage["hwm_mb"])
                self.cpu_done += usage["cpu"]
            self.result.usage = {"peak_rss_mb": self.peak_mb, "cpu_s": self.cpu_done}
            if self.fleet is not None:
                self.result.usage["client_cpu_s"] = self.fleet.cpu()
                self.fleet.close()
            if self.control is not None:
                self.control.stop()
        return self.result


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--proxies", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4, help="ADS client processes")
    parser.add_argument("--changes", type=int, default=3, help="changes measured per kind")
    parser.add_argument("--scenarios", default="sotw,sotw-baseline,delta,sotw-nosidecar",
                        help=f"comma-separated, of: {', '.join(SCENARIOS)}")  # fmt: skip
    parser.add_argument("--settle", type=float, default=1.0,
                        help="quiet seconds ending a measurement (late pushes count)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=300.0, help="per measurement")
    parser.add_argument("--max-rss-mb", type=float, default=6000.0,
                        help="stop a scenario whose control plane grows past this")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="100 services, 10 namespaces, 200 proxies, 1 change")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the config dirs and logs (removed by default)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.services, args.namespaces, args.proxies = 100, 10, 200
        args.workers, args.changes, args.settle, args.timeout = 2, 1, 0.5, 60.0
    for name in args.scenarios.split(","):
        if name not in SCENARIOS:
            parser.error(f"--scenarios: unknown scenario {name!r}")
    if args.namespaces < 2 or args.services < args.namespaces or args.proxies < args.namespaces:
        parser.error("need --namespaces >= 2 and at least one service and proxy per namespace")
    workdir = Path(tempfile.mkdtemp(prefix="mizzen-bench-scale-"))
    options = Options(args.services, args.namespaces, args.proxies, args.workers, args.changes,
                      args.settle, args.timeout, args.max_rss_mb, workdir)  # fmt: skip
    return args, options


def main(argv: list[str] | None = None) -> int:
    args, options = parse_args(argv)
    names = args.scenarios.split(",")
    results = []
    print(f"mesh: {options.services} services, {options.namespaces} namespaces, "
          f"{options.proxies} proxies in {options.workers} client processes; logs in "
          f"{options.workdir}{'' if args.keep else ' (removed at the end; --keep keeps them)'}",
          flush=True)  # fmt: skip
    for name in names:
        started = time.monotonic()
        result = Scenario(name, options).run()
        print(f"scenario {name}: {time.monotonic() - started:.0f} s", flush=True)
        results.append(result)
    print_report(results, options.proxies)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))
    if not args.keep:
        shutil.rmtree(options.workdir, ignore_errors=True)
    failed = [r for r in results if any(n.startswith("stopped") for n in r.notes)]
    return 1 if failed and len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
