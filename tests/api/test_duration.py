"""Durations: a unit, at least 1 ms, whole milliseconds; conversions for the translators."""

from __future__ import annotations

import pytest

from control.api.duration import DurationError, format_millis, parse_millis, to_proto, to_seconds


@pytest.mark.parametrize(
    ("text", "millis"),
    [("1ms", 1), ("100ms", 100), ("1.5s", 1500), ("0.5s", 500), ("1h", 3_600_000),
     ("1m30s", 90_000), ("2000us", 2), ("1000000ns", 1), (".25s", 250), ("7s", 7000)],
)  # fmt: skip
def test_parse(text: str, millis: int) -> None:
    assert parse_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "reason"),
    [("10", "has no unit"), ("0.5ms", "at least 1ms"), ("0s", "at least 1ms"),
     ("1.0005s", "ms precision"), ("1500us", "ms precision"), ("-1s", "invalid duration"),
     ("1d", "invalid duration"), ("", "invalid duration"), ("s", "invalid duration"),
     ("1" * 100 + "s", "too long")],
)  # fmt: skip
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(DurationError, match=reason):
        parse_millis(text)


def test_conversions() -> None:
    assert to_proto("1.5s") == (1, 500_000_000)
    assert to_proto("250ms") == (0, 250_000_000)
    assert to_seconds("1.5s") == 1.5
    assert format_millis(1500) == "1.500s"
    assert format_millis(2000) == "2s"
