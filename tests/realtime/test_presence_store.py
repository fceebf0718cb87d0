"""The shared presence map in Redis (server/realtime/presence.py), on a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from server.realtime.presence import RedisPresence
from server.realtime.protocol import PresenceEntry

pytestmark = pytest.mark.redis
ANN, BOB = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[tuple[RedisPresence, RedisPresence]]:
    """Two instances' stores under a prefix of their own (deleted after)."""
    prefix = f"mbtest-{uuid.uuid4().hex[:8]}:"
    client = aioredis.from_url(redis_url)
    try:
        yield (
            RedisPresence(client, "one", prefix=prefix),
            RedisPresence(client, "two", prefix=prefix),
        )
    finally:
        keys = [k async for k in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_enter_returns_the_whole_map_with_the_newcomer(
    store: tuple[RedisPresence, RedisPresence],
) -> None:
    one, two = store
    project = uuid.uuid4()
    ann = PresenceEntry(user_id=ANN, name="Ann", state={})
    bob = PresenceEntry(user_id=BOB, name="Bob", state={"cursor": [1, 2]})
    assert await one.enter(project, "one.1", ann) == {"one.1": ann}
    assert await two.enter(project, "two.1", bob) == {"one.1": ann, "two.1": bob}
    assert await one.enter(uuid.uuid4(), "one.1", ann) == {"one.1": ann}  # maps are per project


async def test_a_changed_state_is_read_as_changed(
    store: tuple[RedisPresence, RedisPresence],
) -> None:
    """A join after a state change sees the new state (no stale decoded copy)."""
    one, two = store
    project = uuid.uuid4()
    await one.enter(project, "one.1", PresenceEntry(user_id=ANN, name="Ann", state={}))
    moved = PresenceEntry(user_id=ANN, name="Ann", state={"cursor": [5, 6]})
    await one.put(project, "one.1", moved)
    seen = await two.enter(project, "two.1", PresenceEntry(user_id=BOB, name="Bob", state={}))
    assert seen["one.1"] == moved


async def test_a_removed_entry_is_gone_for_the_next_join(
    store: tuple[RedisPresence, RedisPresence],
) -> None:
    one, two = store
    project = uuid.uuid4()
    ann = PresenceEntry(user_id=ANN, name="Ann", state={})
    await one.enter(project, "one.1", ann)
    assert await one.remove(project, "one.1") == ann
    assert await one.remove(project, "one.1") is None
    bob = PresenceEntry(user_id=BOB, name="Bob", state={})
    assert await two.enter(project, "two.1", bob) == {"two.1": bob}
    await two.stop()  # a clean stop removes the instance's entries (its index)
    assert await one.members(project) == {}
