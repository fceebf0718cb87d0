"""argon2 off the event loop: a small thread pool, with a bound on the work waiting for it.

An argon2id hash or verify takes ~200 ms of CPU on our machines; on the event
loop that is 200 ms during which no socket of the instance is served (16
sign-ups at once pushed a ping round trip from 0.8 ms to 2.2 s). argon2-cffi
releases the GIL while it hashes, so a thread pool runs it beside the loop.
The pool is small (half the cores, at most 4) so hashes cannot take every
core from the loop, and at most ``MAX_WAITING`` checks wait for it: beyond
that a password check is refused with 429 instead of queueing without bound.

One pool per process, like the hasher itself: a ``ThreadPoolExecutor`` is not
tied to an event loop, and tests run apps on several loops.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server.access.passwords import hash_password, verify_password
from server.errors import RateLimited

T = TypeVar("T")

WORKERS = max(1, min(4, (os.cpu_count() or 2) // 2))
MAX_WAITING = 64  # hashes queued or running; ~3 s of work for 1 worker at 200 ms each
BUSY_RETRY_S = 1


class HashPool:
    """Runs password hashing in at most ``workers`` threads, with at most ``max_waiting`` jobs."""

    def __init__(self, *, workers: int = WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._max_waiting = max_waiting
        self._waiting = 0
        self._lock = threading.Lock()  # apps on several loops (threads) may share the pool

    @property
    def waiting(self) -> int:
        """Jobs queued or running now."""
        return self._waiting

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in the pool; RateLimited when ``max_waiting`` jobs are there already."""
        with self._lock:
            if self._waiting >= self._max_waiting:
                raise RateLimited(
                    "too many password checks at once; try again in a second",
                    retry_after=BUSY_RETRY_S,
                )
            self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work)
        finally:
            with self._lock:
                self._waiting -= 1


POOL = HashPool()


async def hash_in_pool(password: str) -> str:
    """The argon2id hash of ``password``, computed off the event loop."""
    return await POOL.run(lambda: hash_password(password))


async def verify_in_pool(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``, checked off the event loop."""
    return await POOL.run(lambda: verify_password(password_hash, password))
