"""The Redis bus: batched publishes keep their order and report their errors (real Redis)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from server.realtime.bus import RedisBroker
from tests.conftest import free_port


async def test_concurrent_publishes_arrive_once_each_in_call_order(redis_url: str) -> None:
    """Hundreds of publishes made at once reach a subscriber in the order they were made."""
    channel = f"test:{uuid.uuid4().hex}"
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    publisher, subscriber = (RedisBroker(client) for client in clients)
    received: list[bytes] = []
    count = 500
    done = asyncio.Event()

    def on_message(_channel: str, payload: bytes) -> None:
        received.append(payload)
        if len(received) == count:
            done.set()

    subscriber.on_message = on_message
    await publisher.start()
    await subscriber.start()
    try:
        await subscriber.subscribe(channel)
        payloads = [str(i).encode() for i in range(count)]
        # Started in this order, each task queues its publish before the first batch goes.
        await asyncio.gather(*(publisher.publish(channel, p) for p in payloads))
        await asyncio.wait_for(done.wait(), 10)
        assert received == payloads
    finally:
        await subscriber.stop()
        await publisher.stop()
        for client in clients:
            await client.aclose()


async def test_every_caller_of_a_failed_batch_gets_the_error() -> None:
    """With Redis unreachable each publish raises; none hangs, and the next batch tries again."""
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    broker = RedisBroker(client)
    await broker.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(broker.publish("test:down", b"x") for _ in range(5)), return_exceptions=True
            ),
            10,
        )
        assert all(isinstance(r, RedisConnectionError | OSError) for r in results), results
        with pytest.raises((RedisConnectionError, OSError)):
            await asyncio.wait_for(broker.publish("test:down", b"again"), 10)
    finally:
        await broker.stop()
        await client.aclose()
