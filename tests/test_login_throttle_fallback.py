"""The login throttle through a Redis outage: its own memory while Redis is gone, Redis once back.

A real ``redis-server`` of the test's own (``private_redis``, on a free port),
stopped and started again, so the shared Redis of the other tests is never touched.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest
import redis.asyncio as aioredis

from server.access.throttle import (
    FallbackLoginThrottle,
    MemoryLoginThrottle,
    RedisLoginThrottle,
    throttle_keys,
)
from tests.conftest import free_port
from tests.servers import private_redis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")

PREFIX = "mb:"


async def test_counts_go_back_to_redis_once_it_answers_again() -> None:
    """Redis gone: attempts are counted (and refused) in memory; back: Redis counts again."""
    port = free_port()
    client = aioredis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
    throttle = FallbackLoginThrottle(
        RedisLoginThrottle(client, limit=3, prefix=PREFIX),
        MemoryLoginThrottle(limit=3),
        retry_s=0.2,
    )
    keys = throttle_keys("someone@example.com", "203.0.113.9")
    account = PREFIX + keys[0]
    try:
        async with private_redis(port):
            assert await throttle.attempt(keys) is None
            assert int(await client.get(account) or 0) == 1  # counted in Redis
        # Redis is gone: the instance counts on its own, and still throttles.
        for _ in range(3):
            assert await throttle.attempt(keys) is None
        assert await throttle.attempt(keys) is not None
        async with private_redis(port):
            await asyncio.sleep(0.3)  # past retry_s: Redis is tried again
            # A fresh Redis knows of no failures: this instance asks it again, not its memory.
            assert await throttle.attempt(keys) is None
            assert int(await client.get(account) or 0) == 1
    finally:
        await client.aclose()
