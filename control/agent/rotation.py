"""When to renew the workload certificate, and how long to wait after a failure: pure
functions of the certificate's times, the clock and a random draw (passed in, so tests and
the scheduler agree).

Renewal at half the lifetime, moved by a jitter of up to ±1% of the lifetime (Istio's numbers),
so pods started together do not all come back at once. The lifetime is counted from when the
agent received the certificate, not from NotBefore, which the CA backdates for clock skew (a
short-lived certificate would otherwise look half gone on arrival).
"""

from __future__ import annotations

from typing import Final

GRACE: Final = 0.5
JITTER: Final = 0.01


def rotation_delay(received_at: float, not_after: float, now: float, draw: float) -> float:
    """Seconds from `now` until renewal; `draw` is uniform in [0, 1)."""
    lifetime = max(0.0, not_after - received_at)
    jitter = (2.0 * draw - 1.0) * JITTER
    renew_at = received_at + lifetime * (GRACE + jitter)
    return max(0.0, renew_at - now)


def retry_delay(attempt: int, initial: float, maximum: float, draw: float) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 0 waits about `initial`."""
    ceiling = min(maximum, initial * (2.0 ** min(attempt, 30)))
    return ceiling * (0.5 + 0.5 * draw)
