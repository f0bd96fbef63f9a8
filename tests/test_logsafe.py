"""The one way untrusted text reaches a log line, and the throttle for repeated lines."""

from __future__ import annotations

from control.logsafe import LogThrottle, untrusted


def test_control_characters_are_escaped_and_long_text_cut() -> None:
    forged = "proxy a\n2026-01-01 INFO mizzen: all good\r\x1b[2J\u2028\x00"
    shown = untrusted(forged)
    assert "\n" not in shown
    assert "\r" not in shown
    assert "\x1b" not in shown
    assert "\u2028" not in shown
    assert "\\n2026" in shown
    assert "\\x1b[2J" in shown
    assert "\\u2028" in shown
    huge = untrusted("x" * 4_000_000)
    assert len(huge) < 250
    assert huge.endswith("(4000000 characters)")
    assert untrusted("plain-text é") == "plain-text é"
    assert untrusted(12) == "12"


def test_a_repeated_line_is_let_through_once_per_interval_with_the_count_held() -> None:
    now = [0.0]
    throttle = LogThrottle(interval=60, clock=lambda: now[0])
    assert throttle.admit("a") == 0
    assert [throttle.admit("a") for _ in range(5)] == [None] * 5
    assert throttle.admit("b") == 0  # another key is its own
    now[0] = 61
    assert throttle.admit("a") == 5


def test_the_throttle_forgets_its_oldest_keys_beyond_its_bound() -> None:
    throttle = LogThrottle(interval=60, max_keys=100, clock=lambda: 0.0)
    for key in range(10_000):
        throttle.admit(key)
    assert len(throttle._seen) <= 100
