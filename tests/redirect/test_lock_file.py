"""The legacy backend's lock file on a read-only root filesystem (the init container's case)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from control.redirect.runner import FALLBACK_LOCK_FILE, LocalRunner, iptables_environment
from tests.harness.netns import Topology


def test_the_default_lock_is_kept_where_run_is_writable() -> None:
    assert iptables_environment({"PATH": "/usr/sbin"}, run_writable=True) is None


def test_a_read_only_run_moves_the_lock_to_the_pods_tmpfs() -> None:
    env = iptables_environment({"PATH": "/usr/sbin"}, run_writable=False)
    assert env == {"PATH": "/usr/sbin", "XTABLES_LOCKFILE": FALLBACK_LOCK_FILE}


def test_a_lock_file_chosen_by_the_user_wins() -> None:
    assert iptables_environment({"XTABLES_LOCKFILE": "/x.lock"}, run_writable=False) is None


@pytest.mark.netns
def test_the_legacy_tool_takes_the_lock_named_in_the_environment(
    topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment variable is what iptables-legacy really reads: the fallback works."""
    if shutil.which("iptables-legacy-restore") is None:
        pytest.skip("needs iptables-legacy-restore")
    pod = topology.add_pod("lock")
    lock = tmp_path / "xtables.lock"
    monkeypatch.setenv("XTABLES_LOCKFILE", str(lock))
    runner = LocalRunner(prefix=("ip", "netns", "exec", pod.netns))
    done = runner.run(["iptables-legacy-restore", "--wait=5"], stdin="*nat\nCOMMIT\n")
    assert done.ok, done.stderr
    assert lock.exists()
    assert os.environ["XTABLES_LOCKFILE"] == str(lock)
