"""Starting one Envoy process: its argv, its config directory, and who it runs as.

In a real pod the agent already runs as the proxy uid (no capabilities, no switching). Run as
root (network-namespace tests, the demo), it starts Envoy as the proxy uid and gid, because the
pod's redirect exempts only that uid's packets: an Envoy running as root would have its own
upstream connections captured again.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import math
import os
import signal
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from control.agent.bootstrap import bootstrap_yaml
from control.agent.settings import AgentOptions, AgentSettings
from control.agent.telemetry.identity import envoy_environment

BOOTSTRAP_FILE: Final = "envoy-bootstrap.yaml"
_PR_SET_PDEATHSIG: Final = 1


@dataclass(frozen=True)
class EnvoyLaunch:
    """Everything needed to (re)start Envoy the same way each time."""

    argv: tuple[str, ...]
    config_dir: Path
    run_as: tuple[int, int] | None  # (uid, gid) to switch to, None to keep ours
    owns_config_dir: bool  # a temp dir the agent made and removes at exit
    # Added to Envoy's environment (the agent's own is inherited): telemetry's identity.
    env: Mapping[str, str] = field(default_factory=dict)


def envoy_argv(
    binary: Path, bootstrap_path: Path, options: AgentOptions, instance_ip: str
) -> tuple[str, ...]:
    """Envoy's command line (pure). Drain is "immediate": once draining, every response asks the
    client to close, so connections move away within the drain duration."""
    version = ipaddress.ip_address(instance_ip).version
    argv = [
        str(binary),
        "-c",
        str(bootstrap_path),
        "--drain-time-s",
        str(math.ceil(options.drain_duration)),
        "--drain-strategy",
        "immediate",
        "--local-address-ip-version",
        f"v{version}",
        "--log-level",
        options.log_level,
    ]
    if options.concurrency:
        argv += ["--concurrency", str(options.concurrency)]
    if options.base_id is None:
        argv.append("--disable-hot-restart")
    else:
        argv += ["--base-id", str(options.base_id)]
    return tuple(argv)


def proxy_identity(options: AgentOptions) -> tuple[int, int] | None:
    """Switch to the proxy's uid/gid only when we are root and they differ from ours."""
    if os.geteuid() != 0 or options.proxy_uid == 0:
        return None
    return (options.proxy_uid, options.proxy_gid)


def prepare_launch(settings: AgentSettings, binary: Path, version: str) -> EnvoyLaunch:
    """Writes the bootstrap into the config dir (made readable by the proxy uid) and returns
    how to start Envoy on it. Only a directory the agent made itself is handed to the proxy
    uid: a root agent given an existing directory (`--config-dir /etc`) never chowns it."""
    run_as = proxy_identity(settings.options)
    owns = settings.config_dir is None
    config_dir = (
        Path(tempfile.mkdtemp(prefix="mizzen-agent-")) if owns else Path(str(settings.config_dir))
    )
    made = owns or not config_dir.exists()
    config_dir.mkdir(parents=True, exist_ok=True)
    bootstrap_path = config_dir / BOOTSTRAP_FILE
    bootstrap_path.write_text(bootstrap_yaml(settings, version))
    bootstrap_path.chmod(0o644)
    if run_as is not None:
        os.chown(bootstrap_path, *run_as)
        if made:
            os.chown(config_dir, *run_as)
    argv = envoy_argv(binary, bootstrap_path, settings.options, settings.instance_ip)
    return EnvoyLaunch(
        argv=argv,
        config_dir=config_dir,
        run_as=run_as,
        owns_config_dir=owns,
        env=envoy_environment(settings),
    )


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGTERM Envoy if the agent dies, so a crashed agent
    never leaves an orphan Envoy holding the pod's ports. Linux only; resolved before the fork.
    It runs after the uid switch (which would clear the setting), and the kernel ties it to the
    forking thread: the agent spawns from its event loop's thread, which lives as long as it."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    agent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != agent:  # the agent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


async def spawn(launch: EnvoyLaunch) -> asyncio.subprocess.Process:
    """Starts Envoy in its own session (a terminal's Ctrl-C reaches the agent, which drains,
    not Envoy directly); stdout and stderr are the agent's, i.e. the container's log."""
    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    if launch.run_as is not None:
        user, group = launch.run_as
        extra_groups = []
    return await asyncio.create_subprocess_exec(
        *launch.argv,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=extra_groups,
        preexec_fn=_die_with_parent(),
        cwd=str(launch.config_dir),
        env={**os.environ, **launch.env},
    )
