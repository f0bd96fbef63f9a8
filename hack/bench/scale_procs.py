"""The processes of the scale benchmark: the control plane (`mizzen control`, a separate process,
measured through /proc) and the fleet of simulated sidecars (`adsclient.py` workers, talked to
over pipes, one JSON object a line)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

HERE = Path(__file__).resolve().parent
_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A scenario that cannot go on (a process died, a limit was exceeded)."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of all the process's threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM = peak RSS) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


class ControlProcess:
    """`mizzen control --config-dir DIR` on the given xDS port (0: any), debug port any."""

    def __init__(
        self, config_dir: Path, xds_port: int, extra: Sequence[str], log: Path,
        *, script: str | None = None,
    ) -> None:  # fmt: skip
        """`script`: a stand-in beside this file with the control plane's flags and first line
        (`baseline.py`: unscoped; `scale_floor.py`: a bare gRPC server), else mizzen's."""
        self.started = time.monotonic()
        self._log = log.open("a")
        command = [str(Path(__file__).with_name(script))] if script else [
            "-m", "control.cli", "control"
        ]  # fmt: skip
        argv = [sys.executable, *command, "--config-dir", str(config_dir),
                "--xds-port", str(xds_port), "--debug-port", "0", "--log-level", "warning",
                *extra]  # fmt: skip
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True
        )
        self.xds_port = 0
        self.debug_port = 0
        self.ports: dict[str, int] = {}
        self.ready_at = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> float:
        """Wait for the `mizzen control: xds=.. debug=..` line; the seconds it took."""
        assert self.process.stdout is not None
        line = _read_line(self.process.stdout, timeout)
        if not line.startswith("mizzen control: xds="):
            raise BenchError(f"control plane did not start: {line!r} (see {self._log.name})")
        parts = dict(p.split("=") for p in line.split()[2:])
        self.ports = {name: int(port) for name, port in parts.items()}  # secure=, ca= as well
        self.xds_port, self.debug_port = int(parts["xds"]), int(parts["debug"])
        self.ready_at = time.monotonic()
        return self.ready_at - self.started

    def last_push(self) -> dict[str, Any]:
        """The control plane's own account of its latest push (`/debug/pushz`), if it has one:
        how long computing it took and how many translations it made."""
        if not self.debug_port:
            return {}  # a stand-in without a debug port
        url = f"http://127.0.0.1:{self.debug_port}/debug/pushz"
        try:
            response = httpx.get(url, timeout=10, trust_env=False)
            body = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    def usage(self) -> dict[str, float]:
        rss, hwm = memory_mb(self.pid)
        return {"cpu": cpu_seconds(self.pid), "rss_mb": rss, "hwm_mb": hwm}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _read_line(stream: IO[str], timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise BenchError(f"no answer within {timeout:.0f}s")
    return stream.readline().strip()


class Fleet:
    """Simulated sidecars spread over worker processes."""

    def __init__(self, target: str, mode: str, specs: list[dict[str, Any]], workers: int,
                 log: Path) -> None:  # fmt: skip
        self._log = log.open("a")
        self.workers: list[subprocess.Popen[str]] = []
        size = -(-len(specs) // workers)
        for index in range(workers):
            chunk = specs[index * size : (index + 1) * size]
            if not chunk:
                continue
            worker = subprocess.Popen(
                [sys.executable, str(HERE / "adsclient.py"), "--target", target, "--mode", mode],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
                start_new_session=True,
            )  # fmt: skip
            assert worker.stdin is not None
            worker.stdin.write(json.dumps({"proxies": chunk}) + "\n")
            worker.stdin.flush()
            self.workers.append(worker)

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def ask(self, command: dict[str, Any], timeout: float = 60) -> list[dict[str, Any]]:
        line = json.dumps(command) + "\n"
        for worker in self.workers:
            assert worker.stdin is not None
            try:
                worker.stdin.write(line)
                worker.stdin.flush()
            except BrokenPipeError as error:
                message = f"ADS client worker {worker.pid} died (see {self._log.name})"
                raise BenchError(message) from error
        answers = []
        for worker in self.workers:
            assert worker.stdout is not None
            text = _read_line(worker.stdout, timeout)
            if not text:
                raise BenchError(f"ADS client worker {worker.pid} died (see {self._log.name})")
            answers.append(json.loads(text))
        return answers

    def status(self) -> dict[str, Any]:
        answers = self.ask({"cmd": "status"})
        errors: dict[str, int] = {}
        for answer in answers:
            for message, count in answer["errors"].items():
                errors[message] = errors.get(message, 0) + count
        return {
            "connected": sum(a["connected"] for a in answers),
            "ready": sum(a["ready"] for a in answers),
            "unimplemented": sum(a["unimplemented"] for a in answers),
            "last": max(a["last"] for a in answers),
            "errors": errors,
        }

    def progress(self, since: float, keys: set[str] | None = None) -> dict[str, float]:
        command: dict[str, Any] = {"cmd": "progress", "since": since}
        if keys is not None:
            command["keys"] = sorted(keys)
        answers = self.ask(command)
        return {
            "touched": sum(a["touched"] for a in answers),
            "expected": sum(a["expected"] for a in answers),
            "last": max(a["last"] for a in answers),
        }

    def window(self, since: float) -> dict[str, list[Any]]:
        merged: dict[str, list[Any]] = {}
        for answer in self.ask({"cmd": "window", "since": since}):
            merged.update(answer)
        return merged

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def close(self) -> None:
        for worker in self.workers:
            try:
                assert worker.stdin is not None
                worker.stdin.write('{"cmd": "exit"}\n')
                worker.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        self._log.close()
