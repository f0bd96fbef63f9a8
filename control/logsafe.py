"""Logging what clients and files say, safely: one way to show untrusted text in a log line, and
one way to keep a repeated warning from flooding the log.

- `untrusted(text)`: cut to a length, control characters escaped (`\\n`, `\\x1b`, `\\u2028`),
  so a node id, a NACK message, a file name or a header can neither forge a log line nor drive
  a terminal, and a 4 MB value costs a few hundred bytes. Used for every value a client, a
  config file or a remote server chose.
- `LogThrottle`: at most one line per key per interval; the next one says how many were held
  back. Its keys are bounded too (the oldest forgotten first), so hostile keys cannot grow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_LIMIT = 200


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def untrusted(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """`value` as text fit for one log line: non-printable characters escaped, cut to `limit`
    characters (with the full length said)."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else _SHORT_ESCAPES.get(c) or _escape(c) for c in cut)
    if len(text) > limit:
        cut += f"... ({len(text)} characters)"
    return cut


class LogThrottle:
    """Lets a log line through once per `interval` per key.

    if (held := throttle.admit(key)) is not None:
        log.warning("... (%d more like it held back)", held)
    """

    def __init__(
        self,
        interval: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        self._seen: dict[object, tuple[float, int]] = {}  # key -> (last let through, held)

    def admit(self, key: object) -> int | None:
        """None: hold this line back. Otherwise log it, with the count held back since the
        last one."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self._seen[key] = (seen[0], seen[1] + 1)
            return None
        self._seen.pop(key, None)
        if len(self._seen) >= self.max_keys:
            del self._seen[next(iter(self._seen))]  # the oldest
        self._seen[key] = (now, 0)
        return seen[1] if seen is not None else 0
