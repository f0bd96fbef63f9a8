"""Running the `mizzen` CLI from async tests: in a worker thread, since it makes blocking HTTP
calls to a control plane that runs in the test's own event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from control.cli.main import main


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


async def mizzen(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)
