"""The login throttle through a Redis outage: its own memory while Redis is gone, Redis once back.

A real ``redis-server`` of the test's own (on a free port), stopped and
started again, so the shared Redis of the other tests is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.access.throttle import (
    FallbackLoginThrottle,
    MemoryLoginThrottle,
    RedisLoginThrottle,
    throttle_keys,
)
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")

PREFIX = "mb:"


@contextlib.contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[None]:
    """A throwaway redis-server on ``port`` (no persistence), stopped on exit."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


async def answering(client: aioredis.Redis) -> None:
    """Wait until the server answers (it is starting)."""
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(Exception):
                if await client.ping():
                    return
            await asyncio.sleep(0.05)


async def test_counts_go_back_to_redis_once_it_answers_again(tmp_path: Path) -> None:
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
        with redis_server(port, tmp_path):
            await answering(client)
            await throttle.record_failure(keys)
            assert int(await client.get(account) or 0) == 1  # counted in Redis
        # Redis is gone: the instance counts on its own, and still throttles.
        for _ in range(3):
            await throttle.record_failure(keys)
        assert await throttle.retry_after(keys) is not None
        with redis_server(port, tmp_path):
            await answering(client)
            await asyncio.sleep(0.3)  # past retry_s: Redis is tried again
            # A fresh Redis knows of no failures: this instance asks it again, not its memory.
            assert await throttle.retry_after(keys) is None
            await throttle.record_failure(keys)
            assert int(await client.get(account) or 0) == 1
    finally:
        await client.aclose()
