"""Control planes for tests: the bookinfo sample config and settings that react fast."""

from __future__ import annotations

import shutil
from pathlib import Path

from control.cli.control_process import ControlSettings

BOOKINFO = Path(__file__).parent / "testdata" / "translate" / "bookinfo"


def fast_settings(config_dir: Path, **extra: object) -> ControlSettings:
    """Ephemeral ports, 50 ms polling and debounce: changes arrive quickly in tests."""
    return ControlSettings(
        config_dir=config_dir, xds_port=0, debug_port=0, poll_interval=0.05, debounce_quiet=0.05,
        **extra,
    )  # fmt: skip


def bookinfo_config(tmp_path: Path) -> Path:
    """A config directory holding the bookinfo sample mesh."""
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(BOOKINFO / "mesh.yaml", config / "mesh.yaml")
    return config
