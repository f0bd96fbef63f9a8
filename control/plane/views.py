"""Read-only mapping views that compute their values when read, so that what is derived from a
kept mapping (a parsed message, a Delta field) costs memory only while someone holds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
S = TypeVar("S")
V = TypeVar("V")


class Derived(Mapping[K, V], Generic[K, S, V]):
    """`source` seen through `derive`: the same keys, each value `derive(source[key])` made at
    every read (memoizing, if wanted, is `derive`'s business)."""

    __slots__ = ("_derive", "_source")

    def __init__(self, source: Mapping[K, S], derive: Callable[[S], V]) -> None:
        self._source = source
        self._derive = derive

    def __getitem__(self, key: K) -> V:
        return self._derive(self._source[key])

    def __contains__(self, key: object) -> bool:
        return key in self._source

    def __len__(self) -> int:
        return len(self._source)

    def __iter__(self) -> Iterator[K]:
        return iter(self._source)
