"""Brute-force defence for password checks: failed guesses counted per account and per address.

Fixed one-minute windows: the N-th failure within a window blocks further
attempts on that key until the window ends (429 with Retry-After). An attempt
is counted *before* its password is checked, atomically (INCR in Redis; one
step without an ``await`` in memory), and taken back when it succeeds or is
refused: so concurrent guesses cannot all pass the check before any failure
is recorded (16 at once all got 401 when the limit was read first and the
failure written after the slow verify). The same counters throttle logins and
the password check of ``DELETE /api/me``; sign-ups count their failures per
address. Redis holds the counters when configured, so every instance sees the
same counts; the embedded mode keeps them in memory (one instance). While
Redis does not answer, each instance counts in its own memory
(:class:`FallbackLoginThrottle`): people can still log in, and guessing is
still limited, per instance.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from server.access.users import canonical_email
from server.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")

WINDOW_S = 60
MAX_TRACKED_KEYS = 100_000  # memory bound of the in-process counters
_FORGIVE_LUA = (Path(__file__).parent / "throttle_forgive.lua").read_text()


def throttle_keys(email: str, ip: str | None) -> list[str]:
    """The counters one login attempt touches (the email is hashed: no PII in Redis)."""
    account = hashlib.sha256(canonical_email(email).encode()).hexdigest()[:32]
    keys = [f"login:acct:{account}"]
    if ip:
        keys.append(f"login:ip:{ip}")
    return keys


def signup_keys(ip: str | None) -> list[str]:
    """The counter of failed sign-ups from one address (none without an address)."""
    return [f"signup:ip:{ip}"] if ip else []


class LoginThrottle(Protocol):
    """Counts attempts first, forgives the ones that succeed; says how long a key is blocked."""

    limit: int

    async def attempt(self, keys: list[str]) -> int | None:
        """Count one attempt against each key: None to go on, or the seconds to wait.

        A refused attempt is not counted (the counters hold guesses that were checked).
        """

    async def forgive(self, keys: list[str]) -> None:
        """Take back an attempt that succeeded (only failures stay counted)."""


class MemoryLoginThrottle:
    """In-process counters (embedded mode), bounded in size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._windows: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def attempt(self, keys: list[str]) -> int | None:
        # No await from the reads to the writes: concurrent attempts count one by one.
        now = time.monotonic()
        windows = [self._live(key, now) for key in keys]
        waits = [end - now for count, end in windows if count >= self.limit]
        if waits:
            return max(1, int(max(waits)) + 1)
        for key, (count, end) in zip(keys, windows, strict=True):
            self._windows[key] = (count + 1, end)
            self._windows.move_to_end(key)
        while len(self._windows) > MAX_TRACKED_KEYS:
            self._windows.popitem(last=False)
        return None

    async def forgive(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            count, end = self._windows.get(key, (0, 0.0))
            if end > now and count > 0:
                self._windows[key] = (count - 1, end)

    def _live(self, key: str, now: float) -> tuple[int, float]:
        """The key's count and window end; a new window when the old one ended."""
        count, end = self._windows.get(key, (0, 0.0))
        return (count, end) if end > now else (0, now + WINDOW_S)


class RedisLoginThrottle:
    """Counters in Redis: INCR + EXPIRE NX per key (counted first), shared by every instance."""

    def __init__(self, client: aioredis.Redis, limit: int, prefix: str = "mb:") -> None:
        self.limit = limit
        self._client = client
        self._prefix = prefix
        self._forgive = client.register_script(_FORGIVE_LUA)

    async def attempt(self, keys: list[str]) -> int | None:
        names = [self._prefix + k for k in keys]
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.incr(name)
                pipe.expire(name, WINDOW_S, nx=True)
                pipe.ttl(name)
            replies = await pipe.execute()
        counts, ttls = replies[::3], replies[2::3]
        waits = [
            max(1, int(ttl))
            for count, ttl in zip(counts, ttls, strict=True)
            if int(count) > self.limit
        ]
        if not waits:
            return None
        await self.forgive(keys)  # refused, not checked: the counters hold guesses
        return max(waits)

    async def forgive(self, keys: list[str]) -> None:
        if isinstance(self._client, RedisCluster):  # no scripts in a cluster's pipeline
            await asyncio.gather(*(self._forgive(keys=[self._prefix + key]) for key in keys))
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:  # one key per script call: keys of one call may sit on other nodes
                await self._forgive(keys=[self._prefix + key], client=pipe)
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

    async def attempt(self, keys: list[str]) -> int | None:
        return await self._counted(lambda throttle: throttle.attempt(keys))

    async def forgive(self, keys: list[str]) -> None:
        await self._counted(lambda throttle: throttle.forgive(keys))

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
