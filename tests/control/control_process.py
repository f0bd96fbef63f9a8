"""`mizzen control` as a child process, as users run it: started with ephemeral ports read back
from the line it prints, stopped with SIGTERM (exit 0, no traceback), killed if a test fails."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunningControl:
    process: subprocess.Popen[str]
    # "xds", "debug" and, when the webhooks are served, "webhook"
    ports: dict[str, int]

    def url(self, port: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[port]}"

    def stop_cleanly(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=15) == 0
        assert self.process.stderr is not None
        assert "Traceback" not in self.process.stderr.read()


BASELINE = Path(__file__).parents[2] / "hack" / "bench" / "baseline.py"


@contextmanager
def control_process(*args: str, baseline: bool = False) -> Iterator[RunningControl]:
    """`baseline`: the scale benchmark's unscoped control plane (same flags) instead."""
    program = [str(BASELINE)] if baseline else ["-m", "control.cli", "control"]
    command = [sys.executable, *program, "--xds-port", "0", "--debug-port", "0", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert re.fullmatch(r"mizzen control:( \w+=\d+)+\n", line), line
            ports = {name: int(port) for name, port in re.findall(r"(\w+)=(\d+)", line)}
            yield RunningControl(process, ports)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
