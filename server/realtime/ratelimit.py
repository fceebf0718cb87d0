"""A token bucket: a socket's message rate (docs/protocol.md §3.5); pure, time is passed in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; a message spends one.

    Args:
        rate: sustained messages per second (default 50).
        burst: how many may arrive at once after a quiet spell (default 100).
    """

    rate: float = 50.0
    burst: float = 100.0
    _tokens: float = field(init=False)
    _stamp: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def take(self, now: float) -> bool:
        """Spend a token at time ``now`` (seconds, monotonic); False when there is none."""
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
