"""Values made once and shared, by key, with a cheap bound on how many are kept."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
S = TypeVar("S")


class Recent(Generic[K, V]):
    """A value per key, made on first use; all are dropped once ``limit`` are kept.

    For values that never change once made (a logged event's frame): whoever
    asks again gets the same object and must not change it. Dropping them all
    at once is cruder than least-recently-used eviction but costs nothing per
    hit, and the hot path here is the hit.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._values: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: K, make: Callable[[S], V], source: S) -> V:
        """The value of ``key``, made with ``make(source)`` unless already kept."""
        value = self._values.get(key)
        if value is None:
            if len(self._values) >= self._limit:
                self._values.clear()
            value = self._values[key] = make(source)
        return value
