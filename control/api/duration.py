"""Durations as Istio writes them (protobuf JSON: "1.5s", "100ms", "1h"), and their conversion.

Envoy counts in milliseconds in most places, and Istio refuses anything finer than a millisecond
or shorter than one, so a duration here is a whole, positive number of milliseconds.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Final

from pydantic import AfterValidator, StrictStr

_UNIT_MS: Final[dict[str, Decimal]] = {
    "ns": Decimal("0.000001"),
    "us": Decimal("0.001"),
    "µs": Decimal("0.001"),
    "ms": Decimal(1),
    "s": Decimal(1000),
    "m": Decimal(60_000),
    "h": Decimal(3_600_000),
}
# One or more <number><unit> parts, as Go's time.ParseDuration reads them ("1h30m", "1.5s").
_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_WHOLE: Final = re.compile(r"(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+")
# Protobuf's Duration tops out at 10,000 years; nobody means more than that.
MAX_MS: Final = 315_576_000_000_000
_MAX_TEXT: Final = 64


class DurationError(ValueError):
    """A duration that Istio would refuse; the message says why."""


def parse_millis(text: str, *, zero: bool = False) -> int:
    """`"1.5s"` -> 1500; DurationError for no unit, < 1 ms (unless `zero` and exactly 0), or a
    fraction of a millisecond."""
    if len(text) > _MAX_TEXT:
        raise DurationError("duration is too long to be a duration")
    if not _WHOLE.fullmatch(text):
        if re.fullmatch(r"[0-9]+(?:\.[0-9]*)?", text):
            raise DurationError(f'duration "{text}" has no unit (e.g. "{text}s" or "{text}ms")')
        raise DurationError(f'invalid duration "{text}": expected e.g. "1.5s", "100ms", "1h"')
    try:
        total = sum((Decimal(n) * _UNIT_MS[u] for n, u in _PART.findall(text)), Decimal(0))
    except InvalidOperation as error:  # pragma: no cover - the regexes admit only decimals
        raise DurationError(f'invalid duration "{text}"') from error
    if total < 1 and not (zero and total == 0):
        raise DurationError(f'duration "{text}" must be at least 1ms')
    if total != total.to_integral_value():
        raise DurationError(f'only durations to ms precision are supported, not "{text}"')
    if total > MAX_MS:
        raise DurationError(f'duration "{text}" is too long')
    return int(total)


def to_proto(text: str) -> tuple[int, int]:
    """`"1.5s"` -> (1, 500_000_000): the (seconds, nanos) of a google.protobuf.Duration."""
    millis = parse_millis(text)
    return millis // 1000, (millis % 1000) * 1_000_000


def to_seconds(text: str) -> float:
    """`"1.5s"` -> 1.5."""
    return parse_millis(text) / 1000


def format_millis(millis: int) -> str:
    """1500 -> "1.500s": the canonical protobuf JSON form (as Envoy's config dumps show it)."""
    seconds, rest = divmod(millis, 1000)
    return f"{seconds}.{rest:03d}s" if rest else f"{seconds}s"


def _check(text: str) -> str:
    parse_millis(text)
    return text


def _check_zero(text: str) -> str:
    parse_millis(text, zero=True)
    return text


# A duration field: kept as the user's text (so YAML round trips exactly), checked on the way in.
Duration = Annotated[StrictStr, AfterValidator(_check)]
# One where zero means something (a cookie's `ttl: 0s`: a session cookie); Istio's schema sets
# no 1 ms floor on these.
ZeroDuration = Annotated[StrictStr, AfterValidator(_check_zero)]
