"""The reconnect schedule: exponential backoff with full jitter, sans I/O.

Full jitter (delay drawn uniformly from ``[0, min(cap, base * factor**n)]``)
spreads a crowd of clients that lost the same server (a 1012 restart,
docs/protocol.md §3.5) instead of bringing them back in one wave.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to wait before reconnect attempt ``attempt`` (0 = the first retry)."""

    base_s: float = 0.1
    factor: float = 2.0
    cap_s: float = 10.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.factor < 1 or self.cap_s < self.base_s:
            raise ValueError("need base_s >= 0, factor >= 1 and cap_s >= base_s")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay before attempt ``attempt`` (never above ``cap_s``)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Compare exponents rather than computing factor**attempt, which overflows.
        bound = self.base_s
        for _ in range(attempt):
            bound *= self.factor
            if bound >= self.cap_s:
                return self.cap_s
        return min(bound, self.cap_s)

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The delay before attempt ``attempt``; ``draw`` returns a uniform number in [0, 1)."""
        return self.ceiling(attempt) * draw()
