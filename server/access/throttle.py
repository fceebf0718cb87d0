"""Brute-force defence for logins: failed attempts counted per account and per address.

Fixed one-minute windows: the N-th failure within a window blocks further
attempts on that key until the window ends (429 with Retry-After). Redis holds
the counters when configured, so every instance sees the same counts; the
embedded mode keeps them in memory (one instance). While Redis does not
answer, each instance counts in its own memory (:class:`FallbackLoginThrottle`):
people can still log in, and guessing is still limited, per instance.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")

WINDOW_S = 60
MAX_TRACKED_KEYS = 100_000  # memory bound of the in-process counters


def throttle_keys(email: str, ip: str | None) -> list[str]:
    """The counters one login attempt touches (the email is hashed: no PII in Redis)."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    keys = [f"login:acct:{account}"]
    if ip:
        keys.append(f"login:ip:{ip}")
    return keys


class LoginThrottle(Protocol):
    """Counts failed logins; says how long a key is blocked."""

    limit: int

    async def retry_after(self, keys: list[str]) -> int | None:
        """Seconds until an attempt on ``keys`` is allowed again, or None if allowed now."""

    async def record_failure(self, keys: list[str]) -> None:
        """Count one failed attempt against each key."""


class MemoryLoginThrottle:
    """In-process counters (embedded mode), bounded in size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def retry_after(self, keys: list[str]) -> int | None:
        now = time.monotonic()
        waits = [
            end - now
            for count, end in (self._windows.get(k, (0, 0.0)) for k in keys)
            if end > now and count >= self.limit
        ]
        return max(1, int(max(waits)) + 1) if waits else None

    async def record_failure(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            count, end = self._windows.get(key, (0, 0.0))
            if end <= now:
                count, end = 0, now + WINDOW_S
            self._windows[key] = (count + 1, end)
            self._windows.move_to_end(key)
        while len(self._windows) > MAX_TRACKED_KEYS:
            self._windows.popitem(last=False)


class RedisLoginThrottle:
    """Counters in Redis: INCR + EXPIRE NX per key, shared by every instance."""

    def __init__(self, client: aioredis.Redis, limit: int, prefix: str = "mb:") -> None:
        self.limit = limit
        self._client = client
        self._prefix = prefix

    async def retry_after(self, keys: list[str]) -> int | None:
        names = [self._prefix + k for k in keys]
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
                pipe.ttl(name)
            replies = await pipe.execute()
        waits = [
            int(ttl)
            for count, ttl in zip(replies[::2], replies[1::2], strict=True)
            if count is not None and int(count) >= self.limit and int(ttl) > 0
        ]
        return max(waits) if waits else None

    async def record_failure(self, keys: list[str]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.incr(self._prefix + key)
                pipe.expire(self._prefix + key, WINDOW_S, nx=True)
            await pipe.execute()


class FallbackLoginThrottle:
    """Redis's counters, or this instance's own while Redis does not answer.

    Without it, a Redis outage failed every login with 500. After a failure
    Redis is left alone for ``retry_s`` (each attempt to reach a dead Redis
    costs the login a connection timeout), then tried again. Counts made in
    memory meanwhile stay in memory: a guesser gains at most one window.
    """

    def __init__(
        self, shared: RedisLoginThrottle, local: MemoryLoginThrottle, retry_s: float = 5.0
    ) -> None:
        self.limit = shared.limit
        self._shared, self._local, self._retry_s = shared, local, retry_s
        self._shared_down_until = 0.0

    async def retry_after(self, keys: list[str]) -> int | None:
        return await self._counted(lambda throttle: throttle.retry_after(keys))

    async def record_failure(self, keys: list[str]) -> None:
        await self._counted(lambda throttle: throttle.record_failure(keys))

    async def _counted(self, call: Callable[[LoginThrottle], Awaitable[T]]) -> T:
        if time.monotonic() >= self._shared_down_until:
            try:
                return await call(self._shared)
            except (RedisError, OSError) as exc:
                self._shared_down_until = time.monotonic() + self._retry_s
                log.warning(
                    "login_throttle.redis_unavailable", error=repr(exc), retry_in_s=self._retry_s
                )
        return await call(self._local)
