"""The install's one poll loop: each new "waiting" line printed once, the deadline kept on a
fake clock (no sleeping), a failed rollout stopping the poll at once."""

from __future__ import annotations

import io
from typing import Any

import pytest

from control.cli.kube_install import InstallError, Waiting, poll_until, wait_for_rollout


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def waiting(fake: FakeTime, timeout: float = 10.0) -> Waiting:
    return Waiting(timeout=timeout, interval=1.0, clock=fake.clock, sleep=fake.sleep)


def test_each_new_message_is_printed_once_and_the_last_is_returned() -> None:
    fake, out = FakeTime(), io.StringIO()
    answers = iter([(False, "a"), (False, "a"), (False, "b"), (False, "b"), (True, "done")])
    result = poll_until(lambda: next(answers), waiting(fake), out, lambda m: m)
    assert result == "done"
    assert out.getvalue() == "waiting: a\nwaiting: b\n"
    assert fake.sleeps == 4


def test_the_deadline_raises_with_the_last_message() -> None:
    fake, out = FakeTime(), io.StringIO()
    with pytest.raises(InstallError, match=r"^gave up: still 3$"):
        poll_until(
            lambda: (False, f"still {int(fake.now)}"),
            waiting(fake, timeout=3.0),
            out,
            lambda message: f"gave up: {message}",
        )
    assert fake.now == 3.0
    assert out.getvalue().splitlines() == [f"waiting: still {n}" for n in range(4)]


class OneDeployment:
    def __init__(self, status: dict[str, Any]) -> None:
        self.deployment = {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "mizzen", "namespace": "mizzen-system", "generation": 1},
            "spec": {"replicas": 2},
            "status": status,
        }

    def get(self, path: str) -> dict[str, Any]:
        return self.deployment


def test_a_failed_rollout_stops_the_poll_at_once() -> None:
    fake, out = FakeTime(), io.StringIO()
    rest = OneDeployment({
        "observedGeneration": 1,
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ],
    })  # fmt: skip
    with pytest.raises(InstallError, match="rollout failed"):
        wait_for_rollout(rest, rest.deployment, waiting(fake), out)  # type: ignore[arg-type]
    assert fake.sleeps == 0
