"""Who is in a project right now (docs/protocol.md §3.4, docs/architecture.md §4).

A map per project: connection id -> ``{user_id, name, state}``. In embedded
mode it lives in memory. With Redis it is a hash per project shared by every
instance; each instance heartbeats a key with a TTL and indexes its own
entries, so when an instance dies (its key expires) any survivor removes its
entries and announces them as leaves: within ``ttl_s + sweep`` seconds
(default 15 + 5, docs/protocol.md §3.4).

Entering (a join) writes the entry and reads the whole map. In a reconnect
storm every socket does, so the enters go to Redis together: one script call
in flight per instance, and the enters arriving meanwhile, of any projects,
go in the next one (``GroupCommit``), each touched map read once for all of
its callers. A map is ``joined.presence`` (docs/protocol.md §3.4): it is kept
as that JSON, built once from the stored entries' bytes (each is stored as
JSON already) and shared by every join it answers, never decoded and
re-encoded per join (a 10,000-member map is a megabyte: docs/performance.md,
"Big rooms").
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import msgspec
import redis.asyncio as aioredis

from server.concurrency.group_commit import GroupCommit
from server.log import get_logger
from server.realtime.protocol import PresenceEntry
from server.tasks import spawn

log = get_logger(__name__)
OnOrphans = Callable[[uuid.UUID, dict[str, PresenceEntry]], Coroutine[Any, Any, None]]

_entry_decoder = msgspec.json.Decoder(PresenceEntry)
_entries_decoder = msgspec.json.Decoder(list[PresenceEntry])
_map_decoder = msgspec.json.Decoder(dict[str, PresenceEntry])
_encoder = msgspec.json.Encoder()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _members(raw: Mapping[bytes | str, bytes | str]) -> dict[str, PresenceEntry]:
    """A presence hash as read from Redis; its entries decoded in one call (a join reads all)."""
    values = (v if isinstance(v, bytes) else v.encode() for v in raw.values())
    entries = _entries_decoder.decode(b"[" + b",".join(values) + b"]")
    return dict(zip(map(_text, raw), entries, strict=True))


# Index several entries under this instance, HSET them, read each touched map: atomic.
_ENTER_LUA = (Path(__file__).parent / "presence_enter.lua").read_text()
# On a Redis Cluster: one project's map (its keys share the project's hash slot).
_ENTER_MAP_LUA = (Path(__file__).parent / "presence_enter_map.lua").read_text()
_PLAIN_KEYS = re.compile(rb"[A-Za-z0-9._:-]*")  # keys written in JSON as they are
ENTER_BATCH = 64  # entries in one script call at most (a few thousand: Lua unpack); more wait


class PresenceMap(Mapping[str, PresenceEntry]):
    """A project's presence map as a join reads it: ``joined.presence``, encoded once.

    Every join sends the whole map (docs/protocol.md §3.4), so in a large
    project the map is most of the join's work: encoding 10,000 entries per
    join made filling a room quadratic in Python objects. Built once from the
    stored JSON of the entries, shared by every join of the batch that read
    it, and sent as it is (``msgspec.Raw``); decoded only when its entries are
    read (tests, tools). Read it, never change it.
    """

    __slots__ = ("_entries", "encoded")

    def __init__(self, encoded: bytes) -> None:
        self.encoded = msgspec.Raw(encoded)
        self._entries: dict[str, PresenceEntry] | None = None

    @classmethod
    def of(cls, entries: Mapping[str, PresenceEntry]) -> PresenceMap:
        """The map of these decoded entries."""
        made = cls(_encoder.encode(entries))
        made._entries = dict(entries)
        return made

    @classmethod
    def from_hash(cls, flat: list[bytes | str]) -> PresenceMap:
        """An HGETALL reply as a flat [key, value, ...] list, its values JSON entries."""
        if not flat:
            return cls(b"{}")
        keys, values = flat[0::2], flat[1::2]
        try:  # the common case: bytes, and connection ids need no escaping; joined in C
            if _PLAIN_KEYS.fullmatch(b"".join(keys)):  # type: ignore[arg-type]
                pairs = map(b'":'.join, zip(keys, values, strict=True))  # type: ignore[arg-type]
                return cls(b'{"' + b',"'.join(pairs) + b"}")
        except TypeError:  # str in the reply (a client that decodes responses)
            pass
        raw = [v if isinstance(v, bytes) else v.encode() for v in flat]
        escaped = (
            _encoder.encode(k.decode()) + b":" + v
            for k, v in zip(raw[0::2], raw[1::2], strict=True)
        )
        return cls(b"{" + b",".join(escaped) + b"}")

    def _decoded(self) -> dict[str, PresenceEntry]:
        if self._entries is None:
            self._entries = _map_decoder.decode(self.encoded)
        return self._entries

    def __getitem__(self, connection_id: str) -> PresenceEntry:
        return self._decoded()[connection_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())


class _Entering(NamedTuple):
    """One enter waiting for its batch: the entry encoded already."""

    project_id: uuid.UUID
    connection_id: str
    raw: bytes


class PresenceStore(Protocol):
    """Shared presence maps."""

    on_orphans: OnOrphans | None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def put(
        self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry
    ) -> None: ...
    async def enter(
        self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry
    ) -> PresenceMap:
        """Put the entry and read the map: it holds the entry, maybe others entered with it.

        The map may be shared with other callers: read it, never change it.
        """
        ...

    async def remove(self, project_id: uuid.UUID, connection_id: str) -> PresenceEntry | None: ...
    async def members(self, project_id: uuid.UUID) -> dict[str, PresenceEntry]: ...


class MemoryPresence:
    """One instance: plain dictionaries (nothing can die without taking them along)."""

    def __init__(self) -> None:
        self.on_orphans: OnOrphans | None = None
        self._maps: dict[uuid.UUID, dict[str, PresenceEntry]] = {}
        # A project's map as joins read it, encoded on the first join after a change.
        self._encoded: dict[uuid.UUID, PresenceMap] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._maps.clear()
        self._encoded.clear()

    async def put(self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry) -> None:
        self._maps.setdefault(project_id, {})[connection_id] = entry
        self._encoded.pop(project_id, None)

    async def enter(
        self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry
    ) -> PresenceMap:
        await self.put(project_id, connection_id, entry)
        encoded = self._encoded.get(project_id)
        if encoded is None:
            encoded = self._encoded[project_id] = PresenceMap.of(self._maps[project_id])
        return encoded

    async def remove(self, project_id: uuid.UUID, connection_id: str) -> PresenceEntry | None:
        members = self._maps.get(project_id)
        if members is None:
            return None
        entry = members.pop(connection_id, None)
        self._encoded.pop(project_id, None)
        if not members:
            del self._maps[project_id]
        return entry

    async def members(self, project_id: uuid.UUID) -> dict[str, PresenceEntry]:
        return dict(self._maps.get(project_id, {}))


class RedisPresence:
    """Presence in Redis, with instance heartbeats and a reaper for dead instances."""

    def __init__(
        self,
        client: aioredis.Redis,
        instance_id: str,
        *,
        ttl_s: float = 15.0,
        prefix: str = "mb:",
        enter_batch: int = ENTER_BATCH,
        sharded: bool = False,
    ) -> None:
        self.on_orphans: OnOrphans | None = None
        self._client = client
        self._instance = instance_id
        self._ttl_s = ttl_s
        self._period_s = ttl_s / 3
        self._prefix = prefix
        self._task: asyncio.Task[None] | None = None
        self._sharded = sharded  # a Redis Cluster: no command spans two projects' keys
        self._enter = client.register_script(_ENTER_LUA)
        self._enter_map = client.register_script(_ENTER_MAP_LUA)
        # One key: every enter of this instance, whatever its project, waits for the same call.
        self._entering: GroupCommit[None, _Entering, PresenceMap] = GroupCommit(
            self._enter_batch, enter_batch
        )

    def _map(self, project_id: uuid.UUID | str) -> str:
        # The project id is the hash tag: on a cluster the map sits in the slot of the
        # project's channel (server/realtime/envelope.py).
        return f"{self._prefix}presence:{{{project_id}}}"

    def _index(self, instance: str) -> str:
        return f"{self._prefix}instance:{instance}:presence"

    def _alive(self, instance: str) -> str:
        return f"{self._prefix}instance:{instance}:alive"

    @property
    def _registry(self) -> str:
        return f"{self._prefix}instances"

    async def start(self) -> None:
        self._task = spawn(self._loop(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A clean stop removes our entries now rather than in ttl_s.
        with contextlib.suppress(Exception):
            await self._reap(self._instance)

    async def put(self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry) -> None:
        if self._sharded:  # the index first (another slot): never an entry outside it
            await self._client.sadd(self._index(self._instance), f"{project_id}:{connection_id}")
            await self._client.hset(self._map(project_id), connection_id, _encoder.encode(entry))
            return
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._map(project_id), connection_id, _encoder.encode(entry))
            pipe.sadd(self._index(self._instance), f"{project_id}:{connection_id}")
            await pipe.execute()

    async def enter(
        self, project_id: uuid.UUID, connection_id: str, entry: PresenceEntry
    ) -> PresenceMap:
        """``put`` and ``members`` in one round trip: the map once the entry is in.

        A lone enter goes at once. Enters arriving while a call is in flight
        wait for it and then go together, up to ``enter_batch`` in one script
        call: a join storm costs redis-py one command per batch rather than
        one per socket (each costs redis-py more than Redis). The map then
        holds the others entered with it too, and is the same map for every
        caller of its project in the batch: callers must not change it. When
        the call fails, every caller of the batch gets the error.

        Raises:
            RedisError, OSError: Redis did not answer, or refused the call.
        """
        return await self._entering.submit(
            None, _Entering(project_id, connection_id, _encoder.encode(entry))
        )

    async def _enter_batch(self, _key: None, batch: list[_Entering]) -> list[PresenceMap]:
        """One script call for ``batch``: each entry's map, built once per project."""
        if self._sharded:
            return await self._enter_sharded(batch)
        keys = [self._index(self._instance)]
        slots: dict[uuid.UUID, int] = {}  # a project's map's position in keys (1-based, as Lua)
        args: list[str | bytes | int] = []
        for project_id, connection_id, raw in batch:
            slot = slots.get(project_id)
            if slot is None:
                keys.append(self._map(project_id))
                slot = slots[project_id] = len(keys)
            args += (slot, connection_id, raw, f"{project_id}:{connection_id}")
        maps = [PresenceMap.from_hash(flat) for flat in await self._enter(keys=keys, args=args)]
        return [maps[slots[entering.project_id] - 2] for entering in batch]

    async def _enter_sharded(self, batch: list[_Entering]) -> list[PresenceMap]:
        """On a cluster: the index first, then one script call per project (each its own slot)."""
        await self._client.sadd(
            self._index(self._instance), *(f"{e.project_id}:{e.connection_id}" for e in batch)
        )
        by_project: dict[uuid.UUID, list[bytes | str]] = {}
        for project_id, connection_id, raw in batch:
            by_project.setdefault(project_id, []).extend((connection_id, raw))
        flats = await asyncio.gather(
            *(
                self._enter_map(keys=[self._map(project_id)], args=args)
                for project_id, args in by_project.items()
            )
        )
        maps = {
            project_id: PresenceMap.from_hash(flat)
            for project_id, flat in zip(by_project, flats, strict=True)
        }
        return [maps[entering.project_id] for entering in batch]

    async def remove(self, project_id: uuid.UUID, connection_id: str) -> PresenceEntry | None:
        if self._sharded:  # the map first, then the index (another slot)
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hget(self._map(project_id), connection_id)
                pipe.hdel(self._map(project_id), connection_id)
                raw, _ = await pipe.execute()
            await self._client.srem(self._index(self._instance), f"{project_id}:{connection_id}")
            return None if raw is None else _entry_decoder.decode(raw)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hget(self._map(project_id), connection_id)
            pipe.hdel(self._map(project_id), connection_id)
            pipe.srem(self._index(self._instance), f"{project_id}:{connection_id}")
            raw, _, _ = await pipe.execute()
        return None if raw is None else _entry_decoder.decode(raw)

    async def members(self, project_id: uuid.UUID) -> dict[str, PresenceEntry]:
        return _members(await self._client.hgetall(self._map(project_id)))

    async def _heartbeat(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._alive(self._instance), b"1", px=int(self._ttl_s * 1000))
            pipe.sadd(self._registry, self._instance)
            await pipe.execute()

    async def _loop(self) -> None:
        while True:
            try:
                await self._heartbeat()
                await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down: keep trying; presence is ephemeral
                log.warning("presence.heartbeat_failed", error=repr(exc))
            await asyncio.sleep(self._period_s)

    async def reap_dead(self) -> int:
        """Reap every instance whose heartbeat expired; how many entries went."""
        return await self._sweep()

    async def _sweep(self) -> int:
        removed = 0
        for raw in await self._client.smembers(self._registry):
            instance = _text(raw)
            if instance == self._instance or await self._client.exists(self._alive(instance)):
                continue
            lock = f"{self._prefix}reap:{instance}"
            if await self._client.set(lock, self._instance, nx=True, ex=30):
                removed += await self._reap(instance)
        return removed

    async def _reap(self, instance: str) -> int:
        """Remove every entry of ``instance`` and announce them as leaves."""
        members = await self._client.smembers(self._index(instance))
        orphans: dict[str, dict[str, PresenceEntry]] = {}
        for member in members:
            project, _, connection_id = _text(member).partition(":")
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hget(self._map(project), connection_id)
                pipe.hdel(self._map(project), connection_id)
                raw, _ = await pipe.execute()
            if raw is not None:
                orphans.setdefault(project, {})[connection_id] = _entry_decoder.decode(raw)
        await self._client.delete(self._index(instance))
        await self._client.srem(self._registry, instance)
        if orphans:
            log.info("presence.reaped", instance=instance, entries=sum(map(len, orphans.values())))
        if self.on_orphans is not None:
            for project, entries in orphans.items():
                await self.on_orphans(uuid.UUID(project), entries)
        return sum(map(len, orphans.values()))
