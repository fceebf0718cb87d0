"""Presence enters go to Redis together (RedisPresence.enter), on a Redis of the tests' own.

A ``redis-server`` of this module alone (``private_redis``): its ``INFO
commandstats`` counts this module's script calls and nobody else's.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from server.realtime.bus import BrokerUnavailable, MemoryBroker
from server.realtime.hub import Realtime
from server.realtime.presence import RedisPresence
from server.realtime.protocol import PresenceEntry
from tests.conftest import free_port
from tests.servers import private_redis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[aioredis.Redis]:
    port = free_port()
    async with private_redis(port):
        client = aioredis.Redis(port=port)
        try:
            yield client
        finally:
            await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"mbtest-{uuid.uuid4().hex[:8]}:"


async def script_calls(client: aioredis.Redis) -> int:
    """Script calls Redis has run so far (EVALSHA, or EVAL when the script was not loaded)."""
    stats = await client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


def entry(n: int) -> PresenceEntry:
    return PresenceEntry(user_id=uuid.uuid4(), name=f"user {n}", state={"n": n})


def stored(raw: dict[bytes, bytes]) -> set[str]:
    return {key.decode() for key in raw}


async def test_concurrent_enters_take_few_script_calls_and_each_sees_its_own_entry(
    client: aioredis.Redis, prefix: str
) -> None:
    """50 sockets of 3 projects entering at once: 2 script calls, each map has its caller."""
    store = RedisPresence(client, "one", prefix=prefix)
    await store.enter(uuid.uuid4(), "warm", entry(0))  # the script is loaded from here on
    projects = [uuid.uuid4() for _ in range(3)]
    wanted = {(projects[n % 3], f"one.{n}"): entry(n) for n in range(50)}
    before = await script_calls(client)
    maps = await asyncio.gather(*(store.enter(p, cid, e) for (p, cid), e in wanted.items()))
    # the first goes at once, alone; the 49 that came meanwhile go together in the next
    assert await script_calls(client) - before == 2
    for ((project, cid), mine), seen in zip(wanted.items(), maps, strict=True):
        assert seen[cid] == mine  # its own entry, as entered
        assert {(project, other) for other in seen} <= wanted.keys()  # and its project's only
    index = {m.decode() for m in await client.smembers(f"{prefix}instance:one:presence")}
    for project in projects:
        ours = {cid for p, cid in wanted if p == project}
        assert stored(await client.hgetall(f"{prefix}presence:{{{project}}}")) == ours
        assert {f"{project}:{cid}" for cid in ours} <= index


async def test_a_script_call_takes_at_most_enter_batch_entries(
    client: aioredis.Redis, prefix: str
) -> None:
    """30 enters at once with enter_batch=8: 1 alone, then 8, 8, 8 and 5."""
    store = RedisPresence(client, "one", prefix=prefix, enter_batch=8)
    await store.enter(uuid.uuid4(), "warm", entry(0))
    project = uuid.uuid4()
    before = await script_calls(client)
    maps = await asyncio.gather(*(store.enter(project, f"one.{n}", entry(n)) for n in range(30)))
    assert await script_calls(client) - before == 5
    assert all(f"one.{n}" in seen for n, seen in enumerate(maps))
    assert len(maps[-1]) == 30  # the last batch read the map with everyone in it


async def test_entries_entered_together_are_reaped_when_their_instance_dies(
    client: aioredis.Redis, prefix: str
) -> None:
    """A dead instance's batched entries all leave, announced per project; a live one's stay."""
    dead = RedisPresence(client, "dead", prefix=prefix)
    live = RedisPresence(client, "live", prefix=prefix)
    await dead._heartbeat()
    await live._heartbeat()
    projects = [uuid.uuid4() for _ in range(3)]
    mine = {(projects[n % 3], f"dead.{n}"): entry(n) for n in range(30)}
    await asyncio.gather(*(dead.enter(p, cid, e) for (p, cid), e in mine.items()))
    for project in projects:
        await live.enter(project, f"live.{project}", entry(99))
    announced: dict[uuid.UUID, set[str]] = {}

    async def on_orphans(project_id: uuid.UUID, leaves: dict[str, PresenceEntry]) -> None:
        announced.setdefault(project_id, set()).update(leaves)

    live.on_orphans = on_orphans
    await client.delete(f"{prefix}instance:dead:alive")  # its heartbeat expired
    assert await live.reap_dead() == 30
    for project in projects:
        assert set(await live.members(project)) == {f"live.{project}"}
        assert announced[project] == {cid for p, cid in mine if p == project}
    assert not await client.exists(f"{prefix}instance:dead:presence")


async def test_a_failed_call_fails_every_caller_in_it_and_the_next_call_works(
    client: aioredis.Redis, prefix: str
) -> None:
    """One bad map fails its whole batch, whatever the callers' projects; the next batch works."""
    store = RedisPresence(client, "one", prefix=prefix)
    bad, good = uuid.uuid4(), uuid.uuid4()
    await client.set(f"{prefix}presence:{{{bad}}}", b"not a hash")  # HSET on it: WRONGTYPE
    first = asyncio.create_task(store.enter(good, "one.first", entry(0)))
    await asyncio.sleep(0)  # in flight: what follows waits for the next call
    batch = [store.enter(bad if n % 2 else good, f"one.{n}", entry(n)) for n in range(9)]
    results = await asyncio.gather(*batch, return_exceptions=True)
    assert all(isinstance(r, ResponseError) for r in results), results
    assert set(await first) == {"one.first"}  # the call before it was not touched

    await client.delete(f"{prefix}presence:{{{bad}}}")
    again = [(bad if n % 2 else good, f"one.{n}") for n in range(9)]
    maps = await asyncio.gather(*(store.enter(p, cid, entry(0)) for p, cid in again))
    assert all(cid in seen for (_, cid), seen in zip(again, maps, strict=True))


async def test_a_failed_call_leaves_no_entry_outside_the_index(
    client: aioredis.Redis, prefix: str
) -> None:
    """When the index cannot take the entries, no map gets them (a reaper would miss them)."""
    store = RedisPresence(client, "one", prefix=prefix)
    project = uuid.uuid4()
    await client.set(f"{prefix}instance:one:presence", b"not a set")  # SADD on it: WRONGTYPE
    with pytest.raises(ResponseError):
        await store.enter(project, "one.1", entry(1))
    assert not await client.exists(f"{prefix}presence:{{{project}}}")


async def test_a_caller_that_gives_up_while_waiting_is_not_entered(
    client: aioredis.Redis, prefix: str
) -> None:
    """A socket gone while its enter waited: the others enter, it does not (no ghost entry)."""
    store = RedisPresence(client, "one", prefix=prefix)
    project = uuid.uuid4()
    first = asyncio.create_task(store.enter(project, "one.0", entry(0)))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(store.enter(project, f"one.{n}", entry(n))) for n in (1, 2, 3)]
    await asyncio.sleep(0)  # each is waiting for the call in flight
    waiting[1].cancel()
    results = await asyncio.gather(first, *waiting, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert set(results[3]) == {"one.0", "one.1", "one.3"}  # type: ignore[arg-type]
    assert set(await store.members(project)) == {"one.0", "one.1", "one.3"}


class Member:
    """What the hub needs of a joining socket: its id."""

    def __init__(self, n: int) -> None:
        self.id = f"one.{n}"


async def test_the_hub_reports_a_failed_batch_to_each_joiner_as_the_bus_being_down(
    client: aioredis.Redis, prefix: str
) -> None:
    """Every join of a failed batch gets BrokerUnavailable; the next joins go through."""
    hub = Realtime(
        broker=MemoryBroker(),
        presence=RedisPresence(client, "one", prefix=prefix),
        instance_id="one",
    )
    bad, good = uuid.uuid4(), uuid.uuid4()
    await client.set(f"{prefix}presence:{{{bad}}}", b"not a hash")
    members = [Member(n) for n in range(6)]
    mine = entry(0)

    async def join(member: Member, project: uuid.UUID) -> dict[str, PresenceEntry]:
        # a socket, as far as the hub goes
        return await hub.presence.enter(member, project, mine)  # type: ignore[arg-type]

    try:
        first = asyncio.create_task(join(members[0], good))
        await asyncio.sleep(0)
        failed = await asyncio.gather(
            *(join(m, bad if n % 2 else good) for n, m in enumerate(members[1:])),
            return_exceptions=True,
        )
        assert all(isinstance(r, BrokerUnavailable) for r in failed), failed
        assert await first == {"one.0": mine}
        await client.delete(f"{prefix}presence:{{{bad}}}")
        joined = await asyncio.gather(*(join(m, bad) for m in members[1:]))
        assert all(m.id in seen for m, seen in zip(members[1:], joined, strict=True))
    finally:
        await hub.stop()
