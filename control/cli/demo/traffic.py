"""A client in a pod: sends GETs and reports where they landed
(`python -m control.cli.demo.traffic`).

`count` mode sends N requests and prints one JSON summary:
    {"versions": {"v1": 801, "v2": 199}, "statuses": {"200": 1000}, "errors": 0,
     "peers": {"v1 from 198.18.0.2": 801, "v2 from 127.0.0.6": 199}}
`stream` mode sends requests until stdin closes or `--duration` passes, one JSON line each:
    {"t": <monotonic seconds>, "status": 200, "version": "v1"} or {"t": ..., "error": "..."}
    (with "close": true when the response said `Connection: close`)
(CLOCK_MONOTONIC is machine-wide, so a caller in another namespace can compare the times).

`latency` mode sends N requests on one keep-alive connection and prints their durations:
    {"ms": [0.41, 0.39, ...]}

In `count` and `stream` modes each request opens a new connection, as a fresh client would:
nothing is retried, so every failure the mesh causes is counted. Standard library only: it runs
inside a pod's namespace.
"""

from __future__ import annotations

import argparse
import http.client
import json
import select
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


def one_request(url: str, headers: dict[str, str], timeout: float) -> dict[str, object]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers=headers)
        response = connection.getresponse()
        body = response.read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as error:
        return {"t": time.monotonic(), "error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()
    version = response.getheader("x-version") or ""
    result: dict[str, object] = {"t": time.monotonic(), "status": response.status}
    if (response.getheader("connection") or "").lower() == "close":
        result["close"] = True  # e.g. a draining Envoy asking clients to go elsewhere
    if version:
        result["version"] = version
        result["peer"] = response.getheader("x-peer") or ""
    elif body and response.status != 200:
        result["body"] = body[:200]
    return result


def latencies(url: str, count: int, headers: dict[str, str], timeout: float) -> list[float]:
    """Milliseconds per GET on one keep-alive connection (the steady state of a busy client)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", parts.path or "/", headers=headers)
            response = connection.getresponse()
            response.read()
            samples.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise SystemExit(f"GET {url}: status {response.status}")
    finally:
        connection.close()
    return samples


def _stdin_closed() -> bool:
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(ready) and not sys.stdin.readline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["count", "stream", "latency"])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    headers: dict[str, str] = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header {header!r} is not NAME:VALUE")
        headers[name.strip()] = value.strip()
    if args.mode == "latency":
        print(json.dumps({"ms": latencies(args.url, args.count, headers, args.timeout)}))
        return
    if args.mode == "count":
        versions: Counter[str] = Counter()
        peers: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        errors: list[str] = []
        for _ in range(args.count):
            result = one_request(args.url, headers, args.timeout)
            if "error" in result:
                errors.append(str(result["error"]))
                continue
            statuses[str(result["status"])] += 1
            if "version" in result:
                versions[str(result["version"])] += 1
                peers[f"{result['version']} from {result['peer']}"] += 1
        summary = {
            "versions": dict(versions),
            "statuses": dict(statuses),
            "peers": dict(peers),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
        }
        print(json.dumps(summary), flush=True)
        return
    deadline = time.monotonic() + args.duration
    print(json.dumps({"t": time.monotonic(), "started": True}), flush=True)
    while time.monotonic() < deadline and not _stdin_closed():
        print(json.dumps(one_request(args.url, headers, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
