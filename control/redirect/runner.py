"""Running the iptables tools: argv lists only, never a shell; a seam for where they run."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    """Runs one command to completion; `which` says whether a tool is installed."""

    def run(self, argv: Sequence[str], stdin: str = "") -> CommandResult: ...

    def which(self, tool: str) -> str | None: ...


# The legacy backend takes a lock file, /run/xtables.lock by default. The init container runs on
# a read-only root filesystem, where that cannot be created; /dev/shm is the pod's own writable
# tmpfs, and the lock only orders iptables runs inside this container anyway.
FALLBACK_LOCK_FILE = "/dev/shm/mizzen-xtables.lock"  # noqa: S108 (a lock, not a temp file)


def iptables_environment(environ: Mapping[str, str], run_writable: bool) -> dict[str, str] | None:
    """The environment for the iptables tools: None (inherit) unless the default lock file
    cannot be created and the user has not chosen one."""
    if run_writable or "XTABLES_LOCKFILE" in environ:
        return None
    return {**environ, "XTABLES_LOCKFILE": FALLBACK_LOCK_FILE}


@dataclass(frozen=True)
class LocalRunner:
    """Runs commands here, optionally behind a prefix (e.g. `ip netns exec NAME`, as tests do)."""

    prefix: tuple[str, ...] = ()
    timeout: float = 60.0

    def run(self, argv: Sequence[str], stdin: str = "") -> CommandResult:
        try:
            done = subprocess.run(
                [*self.prefix, *argv],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env=iptables_environment(os.environ, os.access("/run", os.W_OK)),
            )
        except FileNotFoundError as error:
            return CommandResult(127, "", f"{argv[0]}: {error.strerror}")
        except OSError as error:  # not executable, too many processes, ...
            return CommandResult(126, "", f"{argv[0]}: {error.strerror or error}")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{argv[0]}: timed out after {self.timeout:g}s")
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def which(self, tool: str) -> str | None:
        return shutil.which(tool)
