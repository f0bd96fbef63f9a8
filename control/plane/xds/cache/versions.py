"""Versions and nonces that never repeat across restarts and replicas: a random per-process
prefix and a counter. A restarted control plane must never take a proxy's old version for an
ACK of something it sent, nor hand out a nonce another replica already used."""

from __future__ import annotations

import itertools
import secrets


class VersionSequence:
    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(6)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"
