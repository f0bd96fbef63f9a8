"""Work reused by object identity, the one way: sources hand the same objects over again for
what did not change (a file not re-read, a translation half not redone), so what was computed
from an object is found again for that very object, whatever it costs to compare by value.

Two rounds are kept (a build, a push): what the previous round used is found in this one and
carried on; what it did not use is dropped by `next_round`. The object is kept with its value, so
an `id` reused after an object was freed never finds another object's value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: dict[int, tuple[K, V]] = {}
        self._previous: dict[int, tuple[K, V]] = {}

    def get(self, obj: K, compute: Callable[[], V]) -> V:
        """The value for `obj`: found (this round or the previous one), else computed."""
        found = self.find(obj)
        return self.keep(obj, compute()) if found is None else found[0]

    def find(self, obj: K) -> tuple[V] | None:
        """`(value,)` when one is known for `obj` (kept for this round), else None. For hot
        paths, where making a `compute` closure per call would cost more than the lookup."""
        key = id(obj)
        found = self._current.get(key)
        if found is None or found[0] is not obj:
            found = self._previous.get(key)
            if found is None or found[0] is not obj:
                return None
            self._current[key] = found
        return (found[1],)

    def keep(self, obj: K, value: V) -> V:
        """Remember `value` for `obj` in this round."""
        self._current[id(obj)] = (obj, value)
        return value

    def next_round(self) -> None:
        """Keep what this round used; forget the rest."""
        self._previous, self._current = self._current, {}
